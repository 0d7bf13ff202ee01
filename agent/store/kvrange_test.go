package store

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

func TestKVRanges(t *testing.T) {
	kv, err := OpenKV(filepath.Join(t.TempDir(), "kv.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer kv.Close()
	ctx := context.Background()
	for _, k := range []string{"b", "d", "f", "h"} {
		if err := kv.Put(ctx, "x", []byte(k), []byte("v"+k)); err != nil {
			t.Fatal(err)
		}
	}
	walk := func(fn func(func(k, v []byte) error) error) string {
		var got []string
		stop := errors.New("stop")
		err := fn(func(k, v []byte) error {
			got = append(got, string(k)+"="+string(v))
			if len(got) == 3 {
				return stop
			}
			return nil
		})
		if err != nil && err != stop {
			t.Fatal(err)
		}
		return strings.Join(got, ",")
	}
	for _, c := range []struct {
		name string
		fn   func(func(k, v []byte) error) error
		want string
	}{
		{"from nil", func(f func(k, v []byte) error) error { return kv.ForEachFrom("x", nil, f) }, "b=vb,d=vd,f=vf"},
		{"from c", func(f func(k, v []byte) error) error { return kv.ForEachFrom("x", []byte("c"), f) }, "d=vd,f=vf,h=vh"},
		{"from d", func(f func(k, v []byte) error) error { return kv.ForEachFrom("x", []byte("d"), f) }, "d=vd,f=vf,h=vh"},
		{"from z", func(f func(k, v []byte) error) error { return kv.ForEachFrom("x", []byte("z"), f) }, ""},
		{"before nil", func(f func(k, v []byte) error) error { return kv.ForEachBefore("x", nil, f) }, "h=vh,f=vf,d=vd"},
		{"before f", func(f func(k, v []byte) error) error { return kv.ForEachBefore("x", []byte("f"), f) }, "d=vd,b=vb"},
		{"before g", func(f func(k, v []byte) error) error { return kv.ForEachBefore("x", []byte("g"), f) }, "f=vf,d=vd,b=vb"},
		{"before z", func(f func(k, v []byte) error) error { return kv.ForEachBefore("x", []byte("z"), f) }, "h=vh,f=vf,d=vd"},
		{"before a", func(f func(k, v []byte) error) error { return kv.ForEachBefore("x", []byte("a"), f) }, ""},
		{"missing bucket", func(f func(k, v []byte) error) error { return kv.ForEachFrom("nope", nil, f) }, ""},
	} {
		if got := walk(c.fn); got != c.want {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
	}
}
