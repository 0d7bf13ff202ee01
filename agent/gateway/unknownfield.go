package gateway

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strconv"
	"strings"
)

// rawMessageType is json.RawMessage's type: a field of it takes any JSON,
// so nothing below it is an unknown field.
var rawMessageType = reflect.TypeFor[json.RawMessage]()

// unknownFieldPath finds, in body, the first object key that decoding
// into a value of type t rejects as unknown (encoding/json's rules: a
// field's json tag name, or its Go name, matched exactly or else without
// regard to case), and returns its path in the form the gateway's other
// errors use ("messages[0].bogus", "stream_options.bogus"): encoding/json
// reports only the key itself ("bogus"), which would send a client
// looking for a top-level parameter. It returns "" when it finds none.
func unknownFieldPath(body []byte, t reflect.Type) string {
	return unknownIn(json.RawMessage(bytes.TrimSpace(body)), t, "")
}

func unknownIn(raw json.RawMessage, t reflect.Type, path string) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == rawMessageType || len(raw) == 0 {
		return ""
	}
	switch t.Kind() {
	case reflect.Struct:
		if raw[0] != '{' {
			return ""
		}
		keys, vals := objectMembers(raw)
		for i, k := range keys {
			f, ok := jsonField(t, k)
			name := k
			if path != "" {
				name = path + "." + k
			}
			if !ok {
				return name
			}
			if p := unknownIn(vals[i], f.Type, name); p != "" {
				return p
			}
		}
	case reflect.Map:
		if raw[0] != '{' {
			return ""
		}
		keys, vals := objectMembers(raw)
		for i, k := range keys {
			if p := unknownIn(vals[i], t.Elem(), path+"."+k); p != "" {
				return p
			}
		}
	case reflect.Slice, reflect.Array:
		if raw[0] != '[' {
			return ""
		}
		var elems []json.RawMessage
		if json.Unmarshal(raw, &elems) != nil {
			return ""
		}
		for i, e := range elems {
			if p := unknownIn(e, t.Elem(), path+"["+strconv.Itoa(i)+"]"); p != "" {
				return p
			}
		}
	}
	return ""
}

// objectMembers returns a JSON object's keys and values in document order
// (a map would lose the order, and so which unknown key comes first).
func objectMembers(raw json.RawMessage) (keys []string, vals []json.RawMessage) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	if _, err := dec.Token(); err != nil { // {
		return nil, nil
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return keys, vals
		}
		k, _ := tok.(string)
		var v json.RawMessage
		if dec.Decode(&v) != nil {
			return keys, vals
		}
		keys = append(keys, k)
		vals = append(vals, v)
	}
	return keys, vals
}

// jsonField is the field of struct type t that encoding/json decodes key
// into: an exact name match first, else one that differs only in case.
func jsonField(t reflect.Type, key string) (reflect.StructField, bool) {
	var fold *reflect.StructField
	for _, f := range reflect.VisibleFields(t) {
		tag, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if tag == "-" || !f.IsExported() || (f.Anonymous && tag == "" && f.Type.Kind() == reflect.Struct) {
			continue
		}
		name := tag
		if name == "" {
			name = f.Name
		}
		if name == key {
			return f, true
		}
		if fold == nil && strings.EqualFold(name, key) {
			fold = &f
		}
	}
	if fold != nil {
		return *fold, true
	}
	return reflect.StructField{}, false
}
