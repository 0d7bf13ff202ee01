package config

import (
	"bytes"
	"encoding"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Error is one problem with the configuration, located where it was found.
type Error struct {
	File string // empty for the environment or built-in values
	Line int    // 0 when unknown
	Key  string // dotted key path, such as api.max_body_bytes
	Msg  string
}

func (e *Error) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		if e.Line > 0 {
			fmt.Fprintf(&b, ":%d", e.Line)
		}
		b.WriteString(": ")
	}
	if e.Key != "" {
		b.WriteString(e.Key)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Errors is every problem found in one load; it is returned whole so an
// operator can fix a file in one pass.
type Errors []*Error

func (es Errors) Error() string {
	msgs := make([]string, len(es))
	for i, e := range es {
		msgs[i] = e.Error()
	}
	return strings.Join(msgs, "\n")
}

// position is where a key was last set.
type position struct {
	file string
	line int
}

// Loaded is a configuration together with where each key came from, so that
// later checks can point at the right file and line.
type Loaded struct {
	*Config
	// Files are the files read, in the order they were applied.
	Files []string
	pos   map[string]position
}

// where returns the file and line where key (or its nearest parent) was set.
func (l *Loaded) where(key string) position {
	for k := key; k != ""; {
		if p, ok := l.pos[k]; ok {
			return p
		}
		i := strings.LastIndexAny(k, ".[")
		if i < 0 {
			break
		}
		k = k[:i]
	}
	return position{}
}

// Where says where key (or its nearest parent) was set, as "FILE:LINE",
// "environment NAME" or "command line"; empty when it was not set (a
// default) or is unknown.
func (l *Loaded) Where(key string) string {
	if l == nil {
		return ""
	}
	p := l.where(key)
	if p.line > 0 {
		return fmt.Sprintf("%s:%d", p.file, p.line)
	}
	return p.file
}

// Options say how to build a configuration.
type Options struct {
	// Path is a YAML file or a directory of *.yaml files; empty for none.
	Path string
	// Dev starts from the dev-mode defaults instead of production ones.
	Dev bool
	// Env looks up environment variables; nil means os.LookupEnv.
	Env func(string) (string, bool)
	// Override, if set, runs after the environment is applied: the place for
	// command-line flags.
	Override func(*Config)
}

// Load builds, resolves and validates a configuration.
func Load(opts Options) (*Loaded, error) {
	cfg := Default()
	if opts.Dev {
		cfg = Dev()
	}
	l := &Loaded{Config: cfg, pos: map[string]position{}}
	if opts.Path != "" {
		files, err := configFiles(opts.Path)
		if err != nil {
			return nil, err
		}
		var errs Errors
		for _, f := range files {
			errs = append(errs, l.decodeFile(f)...)
		}
		l.Files = files
		if len(errs) > 0 {
			return nil, errs
		}
	}
	if opts.Dev && len(cfg.Gateway.Providers) == 0 && len(cfg.Gateway.Models) == 0 {
		// Only when the files configure no gateway: theirs replaces this
		// one whole, so a file's own providers never meet a dev alias
		// that names a provider the file did not keep.
		cfg.Gateway.Providers, cfg.Gateway.Models = devGateway()
	}
	lookup := opts.Env
	if lookup == nil {
		lookup = os.LookupEnv
	}
	if errs := applyEnv(cfg, lookup, l.pos); len(errs) > 0 {
		return nil, errs
	}
	if opts.Override != nil {
		before := *cfg
		opts.Override(cfg)
		// Errors about what a flag set name the command line, not the
		// file line it overrode.
		for _, key := range Diff(&before, cfg) {
			l.pos[key] = position{file: "command line"}
		}
	}
	// A secret that cannot be read leaves its token's Secret empty, which
	// validate does not judge, so both kinds of problem are reported in
	// one go rather than the value errors only once the secrets load.
	errs := l.resolveSecrets(lookup)
	errs = append(errs, l.validate()...)
	if len(errs) > 0 {
		return nil, errs
	}
	return l, nil
}

// configFiles lists the files that path names: the file itself, or the
// directory's *.yaml and *.yml files in name order.
func configFiles(path string) ([]string, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	if !st.IsDir() {
		return []string{path}, nil
	}
	entries, err := os.ReadDir(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	var files []string
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || strings.HasPrefix(name, ".") {
			continue
		}
		if strings.HasSuffix(name, ".yaml") || strings.HasSuffix(name, ".yml") {
			files = append(files, filepath.Join(path, name))
		}
	}
	sort.Strings(files)
	if len(files) == 0 {
		return nil, fmt.Errorf("config: directory %s holds no *.yaml or *.yml files", path)
	}
	return files, nil
}

func (l *Loaded) decodeFile(file string) Errors {
	body, err := os.ReadFile(file)
	if err != nil {
		return Errors{{File: file, Msg: err.Error()}}
	}
	dec := yaml.NewDecoder(bytes.NewReader(body))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil // an empty file changes nothing
		}
		return Errors{yamlSyntaxError(file, body, err)}
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return Errors{{File: file, Line: extra.Line, Msg: "more than one YAML document; put each configuration in its own file"}}
	}
	d := &decoder{file: file, pos: l.pos}
	d.decode(&doc, reflect.ValueOf(l.Config).Elem(), "")
	return d.errs
}

// decoder maps a yaml.Node tree onto a Go value, strictly, collecting every
// error with its line and key.
type decoder struct {
	file string
	pos  map[string]position
	errs Errors
}

var (
	durationType        = reflect.TypeFor[time.Duration]()
	textUnmarshalerType = reflect.TypeFor[encoding.TextUnmarshaler]()
)

func (d *decoder) fail(n *yaml.Node, key, format string, args ...any) {
	d.errs = append(d.errs, &Error{File: d.file, Line: n.Line, Key: key, Msg: fmt.Sprintf(format, args...)})
}

func (d *decoder) decode(n *yaml.Node, v reflect.Value, key string) {
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) > 0 {
			d.decode(n.Content[0], v, key)
		}
		return
	case yaml.AliasNode:
		d.decode(n.Alias, v, key)
		return
	}
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		return // "key:" with no value keeps what was there
	}
	if v.Kind() == reflect.Pointer {
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		v = v.Elem()
	}
	if v.Type() == durationType {
		d.decodeDuration(n, v, key)
		return
	}
	if reflect.PointerTo(v.Type()).Implements(textUnmarshalerType) {
		if n.Kind != yaml.ScalarNode {
			d.fail(n, key, "expected a single value, got %s", kindName(n))
			return
		}
		if err := v.Addr().Interface().(encoding.TextUnmarshaler).UnmarshalText([]byte(n.Value)); err != nil {
			d.fail(n, key, "%v", err)
		}
		return
	}
	switch v.Kind() {
	case reflect.Struct:
		d.decodeStruct(n, v, key)
	case reflect.Map:
		d.decodeMap(n, v, key)
	case reflect.Slice:
		d.decodeSlice(n, v, key)
	case reflect.Interface:
		var x any
		if err := n.Decode(&x); err != nil {
			d.fail(n, key, "%v", err)
			return
		}
		if x != nil {
			v.Set(reflect.ValueOf(x))
		}
	default:
		d.decodeScalar(n, v, key)
	}
}

func (d *decoder) decodeStruct(n *yaml.Node, v reflect.Value, key string) {
	if n.Kind != yaml.MappingNode {
		d.fail(n, key, "expected a mapping of keys to values, got %s", kindName(n))
		return
	}
	fields := structFields(v.Type())
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		kn, vn := n.Content[i], n.Content[i+1]
		name := kn.Value
		sub := joinKey(key, name)
		if kn.Kind != yaml.ScalarNode {
			d.fail(kn, key, "keys must be plain names")
			continue
		}
		if name == "<<" {
			d.fail(kn, key, "YAML merge keys (<<) are not supported; write the keys out")
			continue
		}
		if seen[name] {
			d.fail(kn, sub, "key set twice in the same mapping")
			continue
		}
		seen[name] = true
		idx, ok := fields[name]
		if !ok {
			msg := fmt.Sprintf("unknown key %q", name)
			if s := suggest(name, fields); s != "" {
				msg += fmt.Sprintf(" (did you mean %q?)", s)
			}
			d.fail(kn, sub, "%s", msg)
			continue
		}
		d.pos[sub] = position{d.file, kn.Line}
		d.decode(vn, v.Field(idx), sub)
	}
}

func (d *decoder) decodeMap(n *yaml.Node, v reflect.Value, key string) {
	if n.Kind != yaml.MappingNode {
		d.fail(n, key, "expected a mapping, got %s", kindName(n))
		return
	}
	if v.Type().Key().Kind() != reflect.String {
		d.fail(n, key, "internal error: map keys must be strings")
		return
	}
	if v.IsNil() {
		v.Set(reflect.MakeMap(v.Type()))
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		kn, vn := n.Content[i], n.Content[i+1]
		sub := joinKey(key, kn.Value)
		elem := reflect.New(v.Type().Elem()).Elem()
		if old := v.MapIndex(reflect.ValueOf(kn.Value).Convert(v.Type().Key())); old.IsValid() {
			elem.Set(old)
		}
		d.pos[sub] = position{d.file, kn.Line}
		d.decode(vn, elem, sub)
		v.SetMapIndex(reflect.ValueOf(kn.Value).Convert(v.Type().Key()), elem)
	}
}

// decodeSlice replaces the whole list: a later file's list is not appended
// to an earlier one's.
func (d *decoder) decodeSlice(n *yaml.Node, v reflect.Value, key string) {
	if n.Kind != yaml.SequenceNode {
		d.fail(n, key, "expected a list, got %s", kindName(n))
		return
	}
	out := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
	for i, en := range n.Content {
		sub := fmt.Sprintf("%s[%d]", key, i)
		d.pos[sub] = position{d.file, en.Line}
		d.decode(en, out.Index(i), sub)
	}
	v.Set(out)
}

func (d *decoder) decodeDuration(n *yaml.Node, v reflect.Value, key string) {
	if n.Kind != yaml.ScalarNode {
		d.fail(n, key, "expected a duration such as 30s, got %s", kindName(n))
		return
	}
	dur, err := parseDuration(n.Value)
	if err != nil {
		d.fail(n, key, "%v", err)
		return
	}
	v.SetInt(int64(dur))
}

func parseDuration(s string) (time.Duration, error) {
	if s == "0" {
		return 0, nil
	}
	dur, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("invalid duration %q: write a number with a unit, such as 500ms, 30s, 5m or 24h", s)
	}
	return dur, nil
}

func (d *decoder) decodeScalar(n *yaml.Node, v reflect.Value, key string) {
	if n.Kind != yaml.ScalarNode {
		d.fail(n, key, "expected %s, got %s", typeName(v.Type()), kindName(n))
		return
	}
	if err := setScalar(v, n.Value, n.ShortTag()); err != nil {
		if secretKey(key) {
			// The message would repeat the value: name its type only.
			d.fail(n, key, "expected %s, got %s (quote it if it is meant as text; the value is a secret, so it is not shown)", typeName(v.Type()), strings.TrimPrefix(n.ShortTag(), "!!"))
			return
		}
		d.fail(n, key, "%v", err)
	}
}

// secretKey reports whether the value of key is a secret written inline,
// which an error message must not repeat.
func secretKey(key string) bool {
	return strings.HasSuffix(key, ".secret") || key == "gossip.encrypt_key"
}

// setScalar parses s into v. tag is the YAML tag the value resolved to, or
// "" for strings from the environment (which are untyped).
func setScalar(v reflect.Value, s, tag string) error {
	want := typeName(v.Type())
	bad := func() error {
		if tag == "!!str" || tag == "" {
			return fmt.Errorf("expected %s, got %q", want, s)
		}
		return fmt.Errorf("expected %s, got %s %s (quote it if it is meant as text)", want, strings.TrimPrefix(tag, "!!"), s)
	}
	switch v.Kind() {
	case reflect.String:
		if tag != "" && tag != "!!str" {
			return bad()
		}
		v.SetString(s)
	case reflect.Bool:
		if tag != "" && tag != "!!bool" {
			return bad()
		}
		b, err := strconv.ParseBool(strings.ToLower(s))
		if err != nil {
			return bad()
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		if tag != "" && tag != "!!int" {
			return bad()
		}
		i, err := strconv.ParseInt(strings.ReplaceAll(s, "_", ""), 0, v.Type().Bits())
		if err != nil {
			return fmt.Errorf("expected %s, got %q: %v", want, s, errors.Unwrap(err))
		}
		v.SetInt(i)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		if tag != "" && tag != "!!int" {
			return bad()
		}
		u, err := strconv.ParseUint(strings.ReplaceAll(s, "_", ""), 0, v.Type().Bits())
		if err != nil {
			return fmt.Errorf("expected %s, got %q: %v", want, s, errors.Unwrap(err))
		}
		v.SetUint(u)
	case reflect.Float32, reflect.Float64:
		if tag != "" && tag != "!!int" && tag != "!!float" {
			return bad()
		}
		f, err := strconv.ParseFloat(s, v.Type().Bits())
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			return fmt.Errorf("expected a finite number, got %q", s)
		}
		v.SetFloat(f)
	default:
		return fmt.Errorf("internal error: cannot decode into %s", v.Type())
	}
	return nil
}

// structFields maps yaml key names to field indexes.
func structFields(t reflect.Type) map[string]int {
	m := make(map[string]int, t.NumField())
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name := yamlName(f)
		if name == "-" {
			continue
		}
		m[name] = i
	}
	return m
}

func yamlName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
	if name == "" {
		name = strings.ToLower(f.Name)
	}
	return name
}

func joinKey(parent, name string) string {
	if parent == "" {
		return name
	}
	return parent + "." + name
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return fmt.Sprintf("%s %q", strings.TrimPrefix(n.ShortTag(), "!!"), n.Value)
	}
	return "something else"
}

func typeName(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "an integer"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a non-negative integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	}
	return t.String()
}

// suggest returns the known key closest to name, if any is close enough to
// be a likely typo.
func suggest(name string, fields map[string]int) string {
	// Keys are lower case with underscores; compare a key written in
	// capitals or with dashes (API, LOG_LEVEL, request-timeout) as such.
	name = strings.ReplaceAll(strings.ToLower(name), "-", "_")
	best, bestDist := "", 3
	for k := range fields {
		if dist := levenshtein(name, k); dist < bestDist || (dist == bestDist && k < best) {
			best, bestDist = k, dist
		}
	}
	return best
}

func levenshtein(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
