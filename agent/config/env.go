package config

import (
	"reflect"
	"strings"
)

// EnvPrefix starts every environment variable the agent reads.
const EnvPrefix = "VIGIL_"

// EnvName is the environment variable that overrides a scalar key:
// VIGIL_ followed by the dotted key path in upper case with dots as
// underscores, so api.max_body_bytes is VIGIL_API_MAX_BODY_BYTES.
func EnvName(key string) string {
	return EnvPrefix + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
}

// walkLeaves calls fn for every scalar setting reachable through structs,
// with its dotted key. Lists and maps are not leaves: they are set in files.
func walkLeaves(v reflect.Value, key string, fn func(key string, v reflect.Value)) {
	t := v.Type()
	if t == durationType || reflect.PointerTo(t).Implements(textUnmarshalerType) {
		fn(key, v)
		return
	}
	switch v.Kind() {
	case reflect.Struct:
		for i := range t.NumField() {
			f := t.Field(i)
			if !f.IsExported() || yamlName(f) == "-" {
				continue
			}
			walkLeaves(v.Field(i), joinKey(key, yamlName(f)), fn)
		}
	case reflect.Pointer:
		if !v.IsNil() {
			walkLeaves(v.Elem(), key, fn)
		}
	case reflect.Slice, reflect.Map, reflect.Interface:
	default:
		fn(key, v)
	}
}

// applyEnv overrides scalar settings from VIGIL_* environment variables and
// records each one in pos, so that later errors about its value name the
// variable rather than the file line it overrode.
func applyEnv(cfg *Config, lookup func(string) (string, bool), pos map[string]position) Errors {
	var errs Errors
	walkLeaves(reflect.ValueOf(cfg).Elem(), "", func(key string, v reflect.Value) {
		name := EnvName(key)
		s, ok := lookup(name)
		if !ok {
			return
		}
		pos[key] = position{file: "environment " + name}
		if err := setFromString(v, s); err != nil {
			errs = append(errs, &Error{File: "environment " + name, Key: key, Msg: err.Error()})
		}
	})
	return errs
}

func setFromString(v reflect.Value, s string) error {
	if v.Type() == durationType {
		d, err := parseDuration(s)
		if err != nil {
			return err
		}
		v.SetInt(int64(d))
		return nil
	}
	if u, ok := v.Addr().Interface().(interface{ UnmarshalText([]byte) error }); ok {
		return u.UnmarshalText([]byte(s))
	}
	return setScalar(v, s, "")
}

// Keys lists every scalar key with its environment variable, for docs and
// `vigil config keys`-style help.
func Keys() []string {
	var keys []string
	walkLeaves(reflect.ValueOf(Default()).Elem(), "", func(key string, _ reflect.Value) {
		keys = append(keys, key)
	})
	return keys
}

// Diff lists the keys whose values differ between a and b. Structs are
// compared key by key; a list or map that differs is named as a whole.
func Diff(a, b *Config) []string {
	var changed []string
	var walk func(va, vb reflect.Value, key string)
	walk = func(va, vb reflect.Value, key string) {
		t := va.Type()
		if va.Kind() == reflect.Struct && t != durationType {
			for i := range t.NumField() {
				f := t.Field(i)
				if f.IsExported() && yamlName(f) != "-" {
					walk(va.Field(i), vb.Field(i), joinKey(key, yamlName(f)))
				}
			}
			return
		}
		if !reflect.DeepEqual(va.Interface(), vb.Interface()) {
			changed = append(changed, key)
		}
	}
	walk(reflect.ValueOf(a).Elem(), reflect.ValueOf(b).Elem(), "")
	return changed
}
