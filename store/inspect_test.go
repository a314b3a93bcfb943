package store

import (
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/zerohop/zerohop/shm"
)

// TestInspect reads a real store through each kind of query: one
// resource's variants, a tag, an origin, everything; the visit bound;
// an entry purged but not yet written is left out.
func TestInspect(t *testing.T) {
	c := newClock()
	s := mustOpen(t, t.TempDir(), testOpts(t, c))
	now := c.Ms()
	item := func(key []byte, tags ...string) *shm.Item {
		return &shm.Item{Key: key, Status: 200, Header: http.Header{"Content-Type": {"text/plain"}}, Body: []byte("hello"),
			StoredMs: now, ExpiresMs: now + 60_000, Tags: tags}
	}
	v42 := urlKey("catalog.test", "/items/42")
	variant := func(lang string) []byte {
		return shm.AppendVary(append([]byte(nil), v42...), []shm.VaryField{{Name: "accept-language", Present: true, Value: lang}})
	}
	marker := item(v42)
	marker.Flags, marker.Vary, marker.Status, marker.Body = shm.FlagVaryIndex, []string{"accept-language"}, 0, nil
	putAll(t, s, marker, item(variant("en"), "product:42"), item(variant("fr"), "product:42"),
		item(urlKey("catalog.test", "/items/43"), "product:43"), item(urlKey("other.test", "/items/42")),
		item(shm.AppendKey(nil, "HEAD", "http", "catalog.test", "/items/44")))
	flush(t, s)

	keysOf := func(q InspectQuery) ([]string, InspectResult) {
		t.Helper()
		var got []string
		res, err := s.Inspect(q, func(in *Inspected) bool {
			p, _ := shm.SplitKey(in.Key)
			name := string(p.Method) + " " + string(p.Host) + string(p.Target)
			if fs, _ := shm.VaryFields(p.Vary); len(fs) > 0 {
				name += " " + fs[0].Value
			}
			if in.Flags&shm.FlagVaryIndex != 0 {
				name += " marker"
			}
			got = append(got, name)
			return true
		})
		if err != nil {
			t.Fatal(err)
		}
		return got, res
	}
	cases := []struct {
		name string
		q    InspectQuery
		want []string
	}{
		{"resource", InspectQuery{Primary: v42}, []string{"GET catalog.test/items/42 marker", "GET catalog.test/items/42 en", "GET catalog.test/items/42 fr"}},
		{"tag", InspectQuery{Tag: "product:42"}, []string{"GET catalog.test/items/42 en", "GET catalog.test/items/42 fr"}},
		{"origin", InspectQuery{Scheme: "http", Host: "CATALOG.test:80"}, []string{"GET catalog.test/items/42 marker",
			"GET catalog.test/items/42 en", "GET catalog.test/items/42 fr", "GET catalog.test/items/43", "HEAD catalog.test/items/44"}},
		{"all", InspectQuery{}, []string{"GET other.test/items/42", "GET catalog.test/items/42 marker", "GET catalog.test/items/42 en", "GET catalog.test/items/42 fr",
			"GET catalog.test/items/43", "HEAD catalog.test/items/44"}}, // key order: hosts are length-prefixed
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, res := keysOf(tc.q)
			if !res.Complete || len(got) != len(tc.want) {
				t.Fatalf("got %q (%+v), want %q", got, res, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Fatalf("got %q, want %q", got, tc.want)
				}
			}
		})
	}

	var one *Inspected
	s.Inspect(InspectQuery{Primary: variant("en"), Headers: true}, func(in *Inspected) bool { one = in; return true })
	if one == nil || one.Status != 200 || one.BodyBytes != 5 || one.Header.Get("Content-Type") != "text/plain" ||
		len(one.Tags) != 1 || one.ExpiresMs != now+60_000 || one.RecordSize == 0 || one.HotSize == 0 {
		t.Fatalf("variant en: %+v", one)
	}

	got, res := keysOf(InspectQuery{MaxVisit: 2})
	if res.Complete || res.Visited != 2 || len(got) != 2 {
		t.Fatalf("MaxVisit 2: %q %+v", got, res)
	}

	// A purged entry is not inspected, whether the removal is written yet or only queued (as Get).
	if _, err := s.Purge(keyPurge(urlKey("catalog.test", "/items/43"), false)); err != nil {
		t.Fatal(err)
	}
	if got, _ := keysOf(InspectQuery{Tag: "product:43"}); len(got) != 0 {
		t.Fatalf("purged entry still inspected: %q", got)
	}
	s.Close()
	if _, err := s.Inspect(InspectQuery{}, func(*Inspected) bool { return true }); err == nil {
		t.Fatal("Inspect after Close: no error")
	}
}

// TestInspectWhileWritingAndClosing scans while the writer commits Puts
// and purges, and while the store closes: no torn entry, no use of a
// closed Pebble (Close waits for the scans), ErrClosed afterwards.
func TestInspectWhileWritingAndClosing(t *testing.T) {
	c := newClock()
	s := mustOpen(t, t.TempDir(), testOpts(t, c))
	now := c.Ms()
	stop := make(chan struct{})
	wrote := make(chan struct{})
	go func() {
		defer close(wrote)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			s.Put(&shm.Item{Key: genKey(i), Status: 200, Header: http.Header{}, Body: []byte("body"),
				StoredMs: now, ExpiresMs: now + 60_000, Tags: []string{groupTag(i % 3)}})
			if i%50 == 0 {
				s.Purge(keyPurge(genKey(i-25), false))
			}
		}
	}()
	scans := make(chan error, 1)
	go func() {
		var err error
		for err == nil {
			_, err = s.Inspect(InspectQuery{Tag: groupTag(1), MaxVisit: 500}, func(in *Inspected) bool {
				if in.Status != 200 || in.BodyBytes != 4 {
					t.Errorf("torn entry: %+v", in)
				}
				return true
			})
		}
		scans <- err
	}()
	time.Sleep(200 * time.Millisecond)
	close(stop)
	<-wrote
	s.Close()
	if err := <-scans; !errors.Is(err, ErrClosed) {
		t.Fatalf("Inspect after Close: %v, want ErrClosed", err)
	}
}
