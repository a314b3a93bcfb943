package flight

import (
	"testing"
	"time"
)

func TestFlights(t *testing.T) {
	var fs Group
	var a, b Call
	keyA, keyB := []byte("GET http://a/x"), []byte("GET http://b/x")

	fa, leader := fs.Join(keyA, &a)
	if !leader || fa != &a {
		t.Fatal("first join of a key does not lead with its own flight")
	}
	if fa.wait != nil {
		t.Fatal("a flight with no follower made a channel")
	}
	if fb, leader := fs.Join(keyB, &b); !leader || fb != &b {
		t.Fatal("another key does not lead its own flight")
	}
	var c Call
	f, leader := fs.Join(keyA, &c)
	if leader || f != &a {
		t.Fatal("second join of a key does not follow the first")
	}
	wait := f.wait
	if wait == nil {
		t.Fatal("follower has nothing to wait on")
	}
	released := make(chan struct{})
	go func() {
		<-wait
		close(released)
	}()
	select {
	case <-released:
		t.Fatal("follower released before the leader finished")
	case <-time.After(20 * time.Millisecond):
	}
	fs.Finish(fa)
	select {
	case <-released:
	case <-time.After(time.Second):
		t.Fatal("follower not released by finish")
	}
	// The key is free again; the other key's flight is untouched.
	if f, leader := fs.Join(keyA, &c); !leader || f != &c {
		t.Fatal("key not free after finish")
	}
	if f, leader := fs.Join(keyB, new(Call)); leader || f != &b {
		t.Fatal("finishing one key ended another's flight")
	}
	fs.Finish(&b)
	fs.Finish(&c)
	if len(fs.m) != 0 {
		t.Fatalf("%d flights left after all finished", len(fs.m))
	}
}
