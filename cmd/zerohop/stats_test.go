package main_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// TestStatsDocument checks /stats names and units against a real daemon
// after a miss and a hit: the contract in docs/stats.md.
func TestStatsDocument(t *testing.T) {
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=300")
		io.WriteString(w, "hello")
	}))
	defer origin.Close()
	d := startDaemon(t)
	c := d.client()
	for range 2 {
		resp, err := c.Get(origin.URL + "/stats-doc")
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	var doc struct {
		Version int       `json:"version"`
		Time    time.Time `json:"time"`
		Cache   struct {
			Dir       string `json:"dir"`
			FileBytes int64  `json:"file_bytes"`
			State     string `json:"state"`
			Heartbeat struct {
				Time       time.Time `json:"time"`
				AgeSeconds float64   `json:"age_seconds"`
			} `json:"heartbeat"`
			Entries           uint64 `json:"entries"`
			InsertsTotal      uint64 `json:"inserts_total"`
			WrittenBytesTotal uint64 `json:"written_bytes_total"`
			ArenaLiveBytes    uint64 `json:"arena_live_bytes"`
		} `json:"cache"`
		SidecarReads struct {
			HitsTotal   uint64 `json:"hits_total"`
			MissesTotal uint64 `json:"misses_total"`
		} `json:"sidecar_reads"`
		Invalidation *struct {
			Log        string `json:"log"`
			AppliedSeq uint64 `json:"applied_seq"`
		} `json:"invalidation"`
		Store *struct{} `json:"store"`
	}
	resp, err := http.Get("http://" + d.admin + "/stats")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	dec := json.NewDecoder(resp.Body)
	if err := dec.Decode(&doc); err != nil {
		t.Fatal(err)
	}
	cs := doc.Cache
	if doc.Version != 1 || time.Since(doc.Time) > time.Minute || cs.Dir != d.dir || cs.FileBytes != 32<<20 || cs.State != "live" {
		t.Errorf("document: %+v", doc)
	}
	// The heartbeat is a time and an age in seconds, not epoch milliseconds.
	if cs.Heartbeat.AgeSeconds < 0 || cs.Heartbeat.AgeSeconds > 30 || cs.Heartbeat.Time.Sub(doc.Time).Abs() > 30*time.Second {
		t.Errorf("heartbeat %+v at %v", cs.Heartbeat, doc.Time)
	}
	if cs.Entries != 1 || cs.InsertsTotal != 1 || cs.WrittenBytesTotal == 0 || cs.ArenaLiveBytes == 0 {
		t.Errorf("cache after one stored response: %+v", cs)
	}
	if doc.SidecarReads.HitsTotal < 1 || doc.SidecarReads.MissesTotal < 1 {
		t.Errorf("sidecar reads after a miss and a hit: %+v", doc.SidecarReads)
	}
	if doc.Invalidation == nil || doc.Invalidation.Log == "" || doc.Store != nil {
		t.Errorf("invalidation %+v, store %+v (none configured)", doc.Invalidation, doc.Store)
	}
}
