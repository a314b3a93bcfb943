package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/urfave/cli/v2"
	"github.com/zerohop/zerohop/internal/sidecar"
	"github.com/zerohop/zerohop/shm"
)

// inspect and keys read the shared file themselves and ask the running
// sidecar, which holds the store's (Pebble's) lock, for the store's side
// (GET /cache/inspect, GET /cache/keys on its admin endpoint). Entries are
// merged by cache key, each saying where it lives: shm, store or both.

var inspectAdminFlags = []cli.Flag{
	&cli.StringFlag{Name: "admin", Value: "127.0.0.1:9901", EnvVars: []string{"ZEROHOP_ADMIN"}, Usage: "the sidecar's admin `ADDR`, asked for the store's entries"},
	&cli.StringFlag{Name: "admin-token", EnvVars: []string{"ZEROHOP_ADMIN_TOKEN"}, Usage: "bearer `TOKEN` of the admin endpoint"},
}

// askStore asks the sidecar's admin endpoint for path. It returns nil and
// a note saying why the store was not read when it could not be.
func askStore(c *cli.Context, path string, q url.Values) (*sidecar.CacheStoreAnswer, string) {
	src := &topSource{base: "http://" + c.String("admin"), token: c.String("admin-token"), hc: &http.Client{Timeout: 10 * time.Second}}
	b, err := src.get(c.Context, path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Sprintf("shared memory only: the sidecar's admin endpoint %s did not answer (%v), so the store, which it holds locked, was not read", c.String("admin"), err)
	}
	var ans sidecar.CacheStoreAnswer
	if err := json.Unmarshal(b, &ans); err != nil {
		return nil, fmt.Sprintf("shared memory only: the admin endpoint's answer is not understood (%v)", err)
	}
	if !ans.Store {
		return nil, "shared memory only: the sidecar runs without a store"
	}
	note := "shared memory and store"
	if !ans.Complete && !ans.More {
		note += fmt.Sprintf(" (the store's scan stopped after %d records: narrow with --prefix or --tag)", ans.Visited)
	}
	return &ans, note
}

// describeStored is describeEntry for an entry of the store.
func describeStored(se *sidecar.StoredEntry, nowMs int64, withHeaders bool) (entryInfo, bool) {
	e := shm.Entry{
		Key: se.Key, Status: se.Status, Flags: se.Flags, StoredMs: se.StoredMs, ExpiresMs: se.ExpiresMs,
		InitialAge: se.InitialAge, SWR: se.SWR, SIE: se.SIE,
	}
	in, ok := describeEntry(&e, nowMs, false)
	if !ok {
		return in, false
	}
	in.VaryOn, in.Tags = nil, nil
	if in.Kind == "vary" {
		in.VaryOn = se.Vary
	}
	for _, t := range se.Tags {
		if !strings.HasPrefix(t, "\x00") {
			in.Tags = append(in.Tags, t)
		}
	}
	in.BodyBytes, in.EntryBytes, in.Where = se.BodyBytes, se.HotSize, []string{"store"}
	if withHeaders {
		in.Headers = se.Header
	}
	return in, true
}

// mergeStored adds the store's entries to those read from shared memory:
// an entry in both says so (the shared-memory copy is shown: the one the
// app reads); one only in the store is added.
func mergeStored(es []entryInfo, ans *sidecar.CacheStoreAnswer, nowMs int64, withHeaders bool) []entryInfo {
	if ans == nil {
		return es
	}
	at := make(map[string]int, len(es))
	for i := range es {
		at[es[i].key] = i
	}
	for i := range ans.Entries {
		se := &ans.Entries[i]
		if j, ok := at[string(se.Key)]; ok {
			es[j].Where = []string{"shm", "store"}
			continue
		}
		if in, ok := describeStored(se, nowMs, withHeaders); ok {
			es = append(es, in)
		}
	}
	return es
}

// whereText is where an entry lives: shm, store or both.
func whereText(in entryInfo) string {
	if len(in.Where) == 2 {
		return "both"
	}
	if len(in.Where) == 1 {
		return in.Where[0]
	}
	return "?"
}
