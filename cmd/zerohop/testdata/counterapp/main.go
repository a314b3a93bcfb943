// Command counterapp is an app process for the app-counters test: it maps
// the cache with the Go client, fetches a URL n times through the
// client's transport (hits from shared memory), POSTs it once (a bypass,
// sent to the sidecar), publishes its counters, says so, and waits for
// standard input to close before closing the client.
//
//	counterapp CACHE_DIR URL N
package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"

	"github.com/zerohop/zerohop/clients/go/zerohop"
)

func main() {
	if len(os.Args) != 4 {
		fail(fmt.Errorf("usage: counterapp CACHE_DIR URL N"))
	}
	n, err := strconv.Atoi(os.Args[3])
	if err != nil {
		fail(err)
	}
	c, err := zerohop.Open(os.Args[1], nil)
	if err != nil {
		fail(err)
	}
	if _, err := c.CountersFile(); err != nil {
		fail(err)
	}
	hc := &http.Client{Transport: c.Transport()}
	for range n {
		resp, err := hc.Get(os.Args[2])
		if err != nil {
			fail(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if !strings.Contains(resp.Header.Get("Cache-Status"), "detail=shm") {
			fail(fmt.Errorf("not a shared-memory hit: %v", resp.Header))
		}
	}
	// Another URL: a POST invalidates its target (RFC 9111 §4.4).
	resp, err := hc.Post(os.Args[2]+"-post", "text/plain", strings.NewReader("x"))
	if err != nil {
		fail(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	c.PublishCounters()
	fmt.Println("published", c.Stats().Hits)
	io.Copy(io.Discard, os.Stdin)
	c.Close()
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "counterapp:", err)
	os.Exit(1)
}
