// Command writer is the Go side of the Node client's cross-language tests:
// the real shm.Writer storing responses whose every byte is a pure function
// of (key id, version), so a reader in another language can check each hit
// byte for byte without talking to the writer (the same idea as
// shm/internal/shmtest, with a derivation small enough to restate in
// JavaScript: clients/node/test/spec.js).
//
//	writer -dir D -mode churn -duration 10s   # Put/Delete/purge as fast as it can
//	writer -dir D -mode fill -keys 100        # store version 1 of each key, then
//	                                          # keep the file live until stdin closes
//
// It prints "ready" once the file is live, and a JSON summary at the end.
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"math/rand"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/zerohop/zerohop/shm"
)

// Spec: keep in step with clients/node/test/spec.js.

func key(id int) []byte {
	return shm.AppendKey(nil, "GET", "http", "torture.test", "/k/"+strconv.Itoa(id))
}

func body(id int, ver uint64) []byte {
	b := []byte("id=" + strconv.Itoa(id) + " ver=" + strconv.FormatUint(ver, 10) + "\n")
	n := int((uint64(id)*7919 + ver*104729) % 3000)
	for j := 0; j < n; j++ {
		b = append(b, byte((uint64(id)*31+ver*17+uint64(j)*7)&0xff))
	}
	return b
}

func item(id int, ver uint64, now time.Time, shortLived bool) *shm.Item {
	h := http.Header{}
	h["Content-Type"] = []string{"application/x-zh-torture"}
	h["X-Key"] = []string{strconv.Itoa(id)}
	h["X-Ver"] = []string{strconv.FormatUint(ver, 10)}
	if ver%4 == 1 {
		pad := make([]byte, ver%50)
		for i := range pad {
			pad[i] = 'a' + byte(i%26)
		}
		h["X-Pad"] = []string{string(pad), "two"}
	}
	statuses := []int{200, 203, 404}
	var flags uint16
	if ver%5 == 0 {
		flags |= shm.FlagAuthShared
	}
	ttl := time.Hour
	if shortLived {
		ttl = time.Duration(1+ver%400) * time.Millisecond
	}
	return &shm.Item{
		Key:       key(id),
		Status:    statuses[ver%3],
		Header:    h,
		Body:      body(id, ver),
		StoredMs:  now.UnixMilli(),
		ExpiresMs: now.Add(ttl).UnixMilli(),
		Flags:     flags,
		ETag:      `"` + strconv.FormatUint(ver, 16) + `"`,
		Tags:      []string{"g" + strconv.Itoa(id%16)},
	}
}

func main() {
	dir := flag.String("dir", "", "cache directory")
	mode := flag.String("mode", "churn", "churn or fill")
	keys := flag.Int("keys", 2000, "key ids 0..keys-1")
	size := flag.Int64("size", 2<<20, "cache file size")
	region := flag.Int64("region", 64<<10, "region size")
	duration := flag.Duration("duration", 10*time.Second, "churn duration")
	verBase := flag.Uint64("ver", 1, "fill: the version to store")
	flag.Parse()
	w, err := shm.OpenWriter(*dir, &shm.Options{Size: *size, RegionSize: *region, NoSalvage: true,
		HeartbeatInterval: 50 * time.Millisecond})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("ready")
	summary := map[string]any{}
	switch *mode {
	case "fill":
		now := time.Now()
		for id := 0; id < *keys; id++ {
			if err := w.Put(item(id, *verBase, now, false)); err != nil {
				log.Fatal(err)
			}
		}
		fmt.Println("filled")
		io.Copy(io.Discard, bufio.NewReader(os.Stdin)) // live until stdin closes
	case "churn":
		rng := rand.New(rand.NewSource(1))
		vers := make([]uint64, *keys)
		var puts, deletes, purges int
		end := time.Now().Add(*duration)
		for i := 0; ; i++ {
			if i%256 == 0 && time.Now().After(end) {
				break
			}
			id := rng.Intn(*keys)
			switch r := rng.Intn(1000); {
			case r < 5:
				w.Delete(key(id))
				deletes++
			case r < 6:
				w.PurgeTag("g"+strconv.Itoa(id%16), rng.Intn(2) == 0)
				purges++
			default:
				vers[id]++
				// Versions are unique per key: id's k-th version is k*keys+id.
				ver := vers[id]*uint64(*keys) + uint64(id)
				if err := w.Put(item(id, ver, time.Now(), rng.Intn(8) == 0)); err != nil {
					log.Fatal(err)
				}
				puts++
			}
		}
		summary = map[string]any{"puts": puts, "deletes": deletes, "purges": purges, "stats": w.Stats()}
	default:
		log.Fatalf("unknown mode %q", *mode)
	}
	if err := w.Close(); err != nil {
		log.Fatal(err)
	}
	json.NewEncoder(os.Stdout).Encode(summary)
}
