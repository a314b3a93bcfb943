package main_test

import (
	"encoding/binary"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zerohop/zerohop/clients/go/zerohop"
	"github.com/zerohop/zerohop/shm"
)

// cacheFileDaemon starts the real binary with a 1 s heartbeat (the writer
// checks its header on each one) and an origin serving cacheable bodies,
// and opens the app-side client on the cache directory.
func cacheFileDaemon(t *testing.T) (d *daemon, origin *httptest.Server, app *zerohop.Client) {
	t.Helper()
	origin = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=300")
		io.WriteString(w, "body of "+r.URL.Path)
	}))
	t.Cleanup(origin.Close)
	cfg := filepath.Join(t.TempDir(), "zerohop.yaml")
	if err := os.WriteFile(cfg, []byte("cache: {heartbeat_interval: 1s}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	d, _ = launchDaemon(t, t.TempDir(), "ZEROHOP_CONFIG="+cfg)
	if !d.waitReady(t, 20*time.Second) {
		t.Fatalf("exited: %v\n%s", d.err, d.stderr)
	}
	app, err := zerohop.Open(d.dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { app.Close() })
	return d, origin, app
}

// fill requests path through the sidecar (a miss fills the cache).
func fill(t *testing.T, d *daemon, origin *httptest.Server, path string) {
	t.Helper()
	resp, err := d.client().Get(origin.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
}

// appHit reports whether the app's client serves path from the mapping.
func appHit(app *zerohop.Client, origin *httptest.Server, path string) bool {
	host := strings.TrimPrefix(origin.URL, "http://")
	_, _, ok := app.Get(nil, "GET", "http", host, path, nil)
	return ok
}

// waitAppHit fills path until the app's client hits it (it remaps a
// replaced file on its own).
func waitAppHit(t *testing.T, d *daemon, origin *httptest.Server, app *zerohop.Client, path, what string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !appHit(app, origin, path) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: the app never got a hit for %s again (client stats %+v)", what, path, app.Stats())
		}
		fill(t, d, origin, path)
		time.Sleep(20 * time.Millisecond)
	}
}

func pwrite(t *testing.T, path string, off int64, b []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

func u32le(v uint32) []byte { return binary.LittleEndian.AppendUint32(nil, v) }
func u64le(v uint64) []byte { return binary.LittleEndian.AppendUint64(nil, v) }

// TestDamagedCacheHeaderIsRebuilt: header words of cache.shm written
// behind the writer's back (through a descriptor of its own, as the app
// could) used to disable the cache silently while /readyz said ready. The
// sidecar must notice, count it, go unready, rebuild the file and become
// ready again, with the app's client hitting the new file.
func TestDamagedCacheHeaderIsRebuilt(t *testing.T) {
	d, origin, app := cacheFileDaemon(t)
	file := filepath.Join(d.dir, shm.FileName)
	for i, tt := range []struct {
		name string
		off  int64 // see docs/format.md, header
		b    []byte
	}{
		{"bucket_log2 layout word", 32, u32le(31)},
		{"state word set to clean", 128, u32le(uint32(shm.StateClean))},
		{"tail beyond head", 256, u64le(1 << 40)},
		{"inval_seq raised", 384, u64le(1<<64 - 1)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			path := "/item/" + string(rune('a'+i))
			waitAppHit(t, d, origin, app, path, "before the damage")
			before := d.metric(t, "zerohop_cache_header_corruptions_total")

			// Poll /readyz from before the write, so that the unready
			// window (from the write to one heartbeat after the rebuild)
			// cannot be missed.
			var saw503, sawReadyAfter atomic.Bool
			done := make(chan struct{})
			go func() {
				defer close(done)
				deadline := time.Now().Add(20 * time.Second)
				for time.Now().Before(deadline) {
					resp, err := http.Get("http://" + d.admin + "/readyz")
					if err == nil {
						resp.Body.Close()
						if resp.StatusCode == 503 {
							saw503.Store(true)
						} else if resp.StatusCode == 200 && saw503.Load() {
							sawReadyAfter.Store(true)
							return
						}
					}
					time.Sleep(5 * time.Millisecond)
				}
			}()
			pwrite(t, file, tt.off, tt.b)
			<-done
			if !saw503.Load() || !sawReadyAfter.Load() {
				t.Fatalf("/readyz: 503 seen %v, ready again %v; want both\n%s", saw503.Load(), sawReadyAfter.Load(), d.stderr)
			}
			if n := d.metric(t, "zerohop_cache_header_corruptions_total"); n != before+1 {
				t.Errorf("zerohop_cache_header_corruptions_total %v, was %v; want one more", n, before)
			}
			waitAppHit(t, d, origin, app, path, "after the rebuild")
		})
	}
	if !strings.Contains(d.stderr.String(), "rebuilt") {
		t.Errorf("no log line about the rebuild:\n%s", d.stderr)
	}
}

// TestOddBucketIsRepaired: a bucket sequence counter left odd by another
// writer (it died between its two increments) made the bucket's keys torn
// forever: every later update by the live writer inverted the seqlock. The
// writer must find it, clear the bucket and make the counter even; the key
// is then served again once refilled.
func TestOddBucketIsRepaired(t *testing.T) {
	d, origin, app := cacheFileDaemon(t)
	file := filepath.Join(d.dir, shm.FileName)
	waitAppHit(t, d, origin, app, "/only", "before the damage")

	// The only entry's bucket, read from the file.
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	var hdr [shm.HeaderSize]byte
	if _, err := f.ReadAt(hdr[:], 0); err != nil {
		t.Fatal(err)
	}
	nb := 1 << binary.LittleEndian.Uint32(hdr[32:])
	index := make([]byte, nb*shm.BucketSize)
	if _, err := f.ReadAt(index, shm.HeaderSize); err != nil {
		t.Fatal(err)
	}
	f.Close()
	victim := -1
	for b := 0; b < nb && victim < 0; b++ {
		for s := 0; s < shm.SlotsPerBucket; s++ {
			if binary.LittleEndian.Uint64(index[b*shm.BucketSize+8+s*shm.SlotSize:]) != 0 {
				victim = b
			}
		}
	}
	if victim < 0 {
		t.Fatal("no occupied bucket in the index")
	}
	seqOff := int64(shm.HeaderSize + victim*shm.BucketSize)
	seq := binary.LittleEndian.Uint32(index[victim*shm.BucketSize:])
	pwrite(t, file, seqOff, u32le(seq+1)) // odd: a write in progress, forever

	readSeq := func() uint32 {
		b := make([]byte, 4)
		f, err := os.Open(file)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		f.ReadAt(b, seqOff)
		return binary.LittleEndian.Uint32(b)
	}
	waitFor(t, func() bool { return d.metric(t, "zerohop_cache_buckets_repaired_total") >= 1 && readSeq()&1 == 0 },
		"the writer to repair the odd bucket")
	waitAppHit(t, d, origin, app, "/only", "after the repair")
	if s := readSeq(); s&1 != 0 {
		t.Errorf("bucket %d counter %d is odd after the writer updated it", victim, s)
	}
}
