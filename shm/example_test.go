package shm_test

import (
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/zerohop/zerohop/shm"
)

// The sidecar owns the cache directory: it opens the writer and stores
// responses under their canonical keys.
func ExampleOpenWriter() {
	dir, err := os.MkdirTemp("", "zerohop-example")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)

	// A small file: a 4 KiB header, the index and 4 regions of 64 KiB.
	w, err := shm.OpenWriter(dir, &shm.Options{Size: 1 << 20, RegionSize: 64 << 10})
	if err != nil {
		panic(err)
	}
	defer w.Close()

	now := time.Now()
	err = w.Put(&shm.Item{
		Key:       shm.AppendKey(nil, "GET", "https", "example.com", "/hello"),
		Status:    200,
		Header:    http.Header{"Content-Type": {"text/plain"}},
		Body:      []byte("hello, world"),
		StoredMs:  now.UnixMilli(),
		ExpiresMs: now.Add(time.Minute).UnixMilli(),
		ETag:      `"v1"`,
	})
	if err != nil {
		panic(err)
	}
	s := w.Stats()
	fmt.Println("entries:", s.Entries, "inserts:", s.Inserts)
	// Output: entries: 1 inserts: 1
}

// Any other process maps the same directory read-only and looks keys up
// without locks. The key is built the same way: scheme and host are
// lower-cased and the default port dropped, so this finds the entry.
func ExampleReader_Get() {
	dir, err := os.MkdirTemp("", "zerohop-example")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	w, err := shm.OpenWriter(dir, &shm.Options{Size: 1 << 20, RegionSize: 64 << 10})
	if err != nil {
		panic(err)
	}
	defer w.Close()
	now := time.Now()
	err = w.Put(&shm.Item{
		Key:    shm.AppendKey(nil, "GET", "https", "example.com", "/hello"),
		Status: 200, Header: http.Header{"Content-Type": {"text/plain"}}, Body: []byte("hello, world"),
		StoredMs: now.UnixMilli(), ExpiresMs: now.Add(time.Minute).UnixMilli(),
	})
	if err != nil {
		panic(err)
	}

	r, err := shm.Open(dir, nil)
	if err != nil {
		panic(err)
	}
	defer r.Close()
	buf := make([]byte, 0, 4096) // reused across lookups: no allocation per hit
	key := shm.AppendKey(nil, "GET", "HTTPS", "Example.com:443", "/hello")
	e, buf, ok := r.Get(buf, key, time.Now().UnixMilli())
	if !ok {
		fmt.Println("miss")
		return
	}
	ct, _ := e.Header("Content-Type")
	fmt.Printf("%d %s %q\n", e.Status, ct, e.Body)

	_, _, ok = r.Get(buf, shm.AppendKey(nil, "GET", "https", "example.com", "/other"), time.Now().UnixMilli())
	fmt.Println("other:", ok)
	// Output:
	// 200 text/plain "hello, world"
	// other: false
}
