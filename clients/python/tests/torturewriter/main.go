// Command torturewriter churns a zerohop cache file with the real Go
// writer for the Python client's cross-language torture test
// (clients/python/tests/test_torture.py). Every response is a pure function
// of its key id and version, and the version travels in the entry (X-Ver),
// so a reader in another process regenerates the exact bytes it must have
// read for every hit:
//
//	key     GET http torture.test /k/<id>?<"q" × (id mod 50)>
//	status  200, or 404 when ver mod 5 == 0
//	headers Content-Type: text/plain, X-Key: <id>, X-Ver: <ver>
//	etag    "<id>-<ver>"
//	tags    g<id mod 16>
//	body    "id=<id> ver=<ver>\n" followed by SHA-256("<id>:<ver>") repeated,
//	        cut to mix(id<<32 ^ ver) mod 4096 bytes (32 bytes that differ for
//	        every key and version: a byte from any other entry shows)
//
// Usage: torturewriter -dir DIR -seconds N. It prints "ready" once the
// file is live and, at the end, the writer's counters as JSON.
package main

import (
	"crypto/sha256"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/zerohop/zerohop/shm"
)

// Keys is how many distinct key ids the writer cycles through.
const Keys = 2000

func mix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	return x ^ x>>31
}

func key(id int) []byte {
	return shm.AppendKey(nil, "GET", "http", "torture.test", "/k/"+strconv.Itoa(id)+"?"+strings.Repeat("q", id%50))
}

func body(id int, ver uint64) []byte {
	n := int(mix(uint64(id)<<32^ver) % 4096)
	b := []byte(fmt.Sprintf("id=%d ver=%d\n", id, ver))
	s := sha256.Sum256([]byte(fmt.Sprintf("%d:%d", id, ver)))
	for len(b) < n {
		b = append(b, s[:]...)
	}
	return b[:n]
}

func item(id int, ver uint64, now time.Time) *shm.Item {
	status := 200
	if ver%5 == 0 {
		status = 404
	}
	ttl := time.Hour
	if ver%8 == 0 {
		ttl = time.Duration(50+ver%400) * time.Millisecond // some expire under the reader
	}
	return &shm.Item{
		Key:    key(id),
		Status: status,
		Header: http.Header{
			"Content-Type": {"text/plain"},
			"X-Key":        {strconv.Itoa(id)},
			"X-Ver":        {strconv.FormatUint(ver, 10)},
		},
		Body:      body(id, ver),
		StoredMs:  now.UnixMilli(),
		ExpiresMs: now.Add(ttl).UnixMilli(),
		ETag:      `"` + strconv.Itoa(id) + "-" + strconv.FormatUint(ver, 10) + `"`,
		Tags:      []string{"g" + strconv.Itoa(id%16)},
	}
}

func main() {
	dir := flag.String("dir", "", "cache directory")
	seconds := flag.Float64("seconds", 10, "how long to churn")
	flag.Parse()
	w, err := shm.OpenWriter(*dir, &shm.Options{
		Size: 4 << 20, RegionSize: 64 << 10, ExpectedEntries: 1000,
		HeartbeatInterval: 100 * time.Millisecond,
		Logger:            slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println("ready")
	rng := rand.New(rand.NewPCG(1, 2))
	var ver, ops uint64
	end := time.Now().Add(time.Duration(*seconds * float64(time.Second)))
	for time.Now().Before(end) {
		for i := 0; i < 64; i++ {
			id := rng.IntN(Keys)
			switch x := rng.IntN(1000); {
			case x < 20:
				w.Delete(key(id))
			case x < 30:
				w.MarkStale(key(id))
			case x < 32:
				w.PurgeTag("g"+strconv.Itoa(id%16), x == 30)
			default:
				ver++
				if err := w.Put(item(id, ver, time.Now())); err != nil {
					fmt.Fprintln(os.Stderr, err)
					os.Exit(1)
				}
			}
			ops++
		}
	}
	s := w.Stats()
	w.Close()
	json.NewEncoder(os.Stdout).Encode(map[string]uint64{
		"ops": ops, "puts": ver, "inserts": s.Inserts, "reclaimed": s.Reclaimed,
		"regions_reclaimed": s.RegionsReclaimed, "evictions": s.Evictions, "deletes": s.Deletes,
	})
}
