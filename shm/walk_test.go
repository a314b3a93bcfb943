package shm_test

import (
	"fmt"
	"sort"
	"testing"

	"github.com/zerohop/zerohop/shm"
)

// TestWalk lists every entry once, variants and soft purges included,
// while a writer keeps writing (skipped entries are allowed, torn ones
// are not: each returned entry must decode to what was put).
func TestWalk(t *testing.T) {
	w, r, _ := openPair(t, small(t))
	for i := range 50 {
		if err := w.Put(item(fmt.Sprintf("/k%d", i), fmt.Sprintf("body %d", i), "all")); err != nil {
			t.Fatal(err)
		}
	}
	primary := key("/v")
	for _, lang := range []string{"en", "fr"} {
		it := item("/v", "in "+lang)
		it.Key = shm.AppendVary(append([]byte(nil), primary...), []shm.VaryField{{Name: "accept-language", Present: true, Value: lang}})
		if err := w.Put(it); err != nil {
			t.Fatal(err)
		}
	}
	w.MarkStale(key("/k7"))
	var urls []string
	var variants []string
	stale := false
	skipped, err := r.Walk(func(e *shm.Entry) bool {
		p, ok := shm.SplitKey(e.Key)
		if !ok {
			t.Fatalf("bad key %q", e.Key)
		}
		urls = append(urls, string(p.Target))
		if shm.SameResource(e.Key, primary) {
			f, ok := shm.VaryFields(p.Vary)
			if !ok || len(f) != 1 || f[0].Name != "accept-language" || string(e.Body) != "in "+f[0].Value {
				t.Errorf("variant %+v body %q", f, e.Body)
			}
			variants = append(variants, f[0].Value)
		}
		if string(p.Target) == "/k7" {
			stale = !e.Fresh(now())
		}
		return true
	})
	if err != nil || skipped != 0 {
		t.Fatalf("walk: %v, %d skipped", err, skipped)
	}
	sort.Strings(variants)
	if len(urls) != 52 || fmt.Sprint(variants) != "[en fr]" || !stale {
		t.Errorf("walked %d entries %v, variants %v, /k7 stale %v", len(urls), urls, variants, stale)
	}
	n := 0
	r.Walk(func(*shm.Entry) bool { n++; return n < 3 })
	if n != 3 {
		t.Errorf("walk did not stop: %d", n)
	}
}

func TestVaryFieldsRoundTrip(t *testing.T) {
	in := []shm.VaryField{{Name: "accept", Present: true, Value: "text/html"}, {Name: "x-absent"}}
	part := shm.AppendVary(nil, in)
	got, ok := shm.VaryFields(part)
	if !ok || fmt.Sprint(got) != fmt.Sprint(in) {
		t.Fatalf("VaryFields = %+v, %v; want %+v", got, ok, in)
	}
	for i := range part {
		if _, ok := shm.VaryFields(part[:i]); ok && i > 0 {
			t.Errorf("truncated part (%d of %d bytes) accepted", i, len(part))
		}
	}
	if f, ok := shm.VaryFields(nil); !ok || f != nil {
		t.Errorf("empty part: %v %v", f, ok)
	}
}

func FuzzVaryFields(f *testing.F) {
	f.Add(shm.AppendVary(nil, []shm.VaryField{{Name: "accept", Present: true, Value: "x"}}))
	f.Add([]byte{0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		fields, ok := shm.VaryFields(b)
		if ok && len(b) > 0 {
			if again := shm.AppendVary(nil, fields); string(again) != string(b) && fieldsLower(fields) {
				t.Fatalf("accepted %x decodes to %+v, which encodes to %x", b, fields, again)
			}
		}
	})
}

// fieldsLower: AppendVary lower-cases names, so only lower-case names
// round-trip byte for byte.
func fieldsLower(fs []shm.VaryField) bool {
	for _, f := range fs {
		for _, c := range []byte(f.Name) {
			if 'A' <= c && c <= 'Z' {
				return false
			}
		}
	}
	return true
}
