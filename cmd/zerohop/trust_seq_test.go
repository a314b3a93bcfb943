package main_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/zerohop/zerohop/clients/go/zerohop"
	"github.com/zerohop/zerohop/invalidate"
)

// maxSeq is invalidate.MaxSeq, the highest sequence number a record may
// carry (spelled out so that the test also builds against older code).
const maxSeq = 1 << 53

// forge appends rec to the log the way a misbehaving app could: a valid,
// checksummed record with whatever sequence number it likes, written with
// one write on an O_APPEND descriptor.
func forge(t *testing.T, dir string, rec invalidate.Record) {
	t.Helper()
	b, err := invalidate.AppendRecord(nil, &rec)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(filepath.Join(dir, "inval", "inval.log"), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(b); err != nil {
		t.Fatal(err)
	}
}

// startsRotated reports whether the log now starts with a rotation mark.
func startsRotated(dir string) bool {
	b := make([]byte, 512)
	f, err := os.Open(filepath.Join(dir, "inval", "inval.log"))
	if err != nil {
		return false
	}
	defer f.Close()
	n, _ := f.ReadAt(b, 0)
	rec, _, err := invalidate.DecodeRecord(b[:n])
	return err == nil && rec.Kind == invalidate.KindMark && len(rec.Payload) > 0 && rec.Payload[0] == invalidate.MarkRotate
}

// cliPurge runs `zerohop purge --key u` with a short timeout and reports
// whether it said the purge was applied.
func cliPurge(t *testing.T, dir, u string) (bool, string) {
	t.Helper()
	out, err := exec.Command(bin, "purge", "--cache-dir", dir, "--timeout", "1s", "--key", u).CombinedOutput()
	return err == nil && strings.Contains(string(out), "applied"), string(out)
}

// seqOrigin serves cacheable responses.
func seqOrigin(t *testing.T) *httptest.Server {
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=600")
		io.WriteString(w, "body of "+r.URL.Path)
	}))
	t.Cleanup(origin.Close)
	return origin
}

func cached(t *testing.T, d *daemon, u string) bool {
	t.Helper()
	resp, err := d.client().Get(u)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return strings.Contains(resp.Header.Get("Cache-Status"), "hit")
}

// TestForgedSeqDoesNotAckPurges: an app appends one valid record numbered
// 2^64-1 (a purge, or a forged rotation mark), or one numbered far above
// the log's. Afterwards, a purge through the CLI, the Go client or the
// admin endpoint must be acknowledged only once the sidecar applied it:
// while the sidecar is stopped (SIGSTOP) the CLI and the client must time
// out instead of answering "applied", sequence numbers must not wrap, and
// once the sidecar runs again the purges are applied and acknowledged.
func TestForgedSeqDoesNotAckPurges(t *testing.T) {
	cases := []struct {
		name string
		rec  invalidate.Record
	}{
		{"max-seq-purge", invalidate.Record{Seq: math.MaxUint64, Kind: invalidate.KindTag, Payload: []byte("nothing")}},
		{"max-seq-rotation-mark", invalidate.Record{Seq: math.MaxUint64, Kind: invalidate.KindMark, Payload: []byte{invalidate.MarkRotate, 1, 2, 3, 4, 5, 6, 7, 8}}},
		{"far-jump", invalidate.Record{Seq: 1 << 40, Kind: invalidate.KindTag, Payload: []byte("nothing")}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			origin := seqOrigin(t)
			dir := t.TempDir()
			d := startDaemonIn(t, dir)
			// Some ordinary purges first, so the log has a history.
			for i := range 3 {
				if ok, out := cliPurge(t, dir, fmt.Sprintf("%s/warmup/%d", origin.URL, i)); !ok {
					t.Fatalf("warm-up purge: %s", out)
				}
			}
			rec := tc.rec
			rec.TimeMs = time.Now().UnixMilli()
			rec.Origin = "evil-app"
			forge(t, dir, rec)
			waitFor(t, func() bool { return d.metric(t, "zerohop_invalidation_lag_bytes") == 0 }, "the tailer to read the forged record")
			// The sidecar rotates a record it does not believe away once it
			// caught up (the new file starts with its rotation mark). Give
			// it a moment, without failing here: the assertions below
			// judge the outcome.
			for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline) && !startsRotated(dir); {
				time.Sleep(10 * time.Millisecond)
			}

			// The admin endpoint: the answer's sequence number is sane and
			// "applied" is true only once the entry is gone.
			victim := origin.URL + "/victim-admin"
			cached(t, d, victim)
			if !cached(t, d, victim) {
				t.Fatal("victim not cached")
			}
			resp, err := http.PostForm("http://"+d.admin+"/purge", url.Values{"key": {victim}, "timeout": {"3s"}})
			if err != nil {
				t.Fatal(err)
			}
			var ans struct {
				Seq     uint64 `json:"seq"`
				Applied bool   `json:"applied"`
			}
			json.NewDecoder(resp.Body).Decode(&ans)
			resp.Body.Close()
			if ans.Seq < 4 || ans.Seq > maxSeq {
				t.Errorf("admin purge numbered %d after 3 purges and a forged record: wrapped or forged-based", ans.Seq)
			}
			if !ans.Applied {
				t.Errorf("admin purge not applied within 3s (seq %d): the forged record blocks acknowledgements", ans.Seq)
			}

			// The CLI and the Go client while the sidecar cannot apply
			// anything: neither may say "applied".
			victim = origin.URL + "/victim-cli"
			cached(t, d, victim)
			c, err := zerohop.Open(dir, &zerohop.Options{Sidecar: d.listen})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			d.cmd.Process.Signal(syscall.SIGSTOP)
			ok, out := cliPurge(t, dir, victim)
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			seq, cerr := c.Invalidate(ctx, invalidate.KeyRecord(origin.URL+"/victim-client", invalidate.Hard))
			cancel()
			d.cmd.Process.Signal(syscall.SIGCONT)
			if ok {
				t.Errorf("zerohop purge said applied while the sidecar was stopped: %s", strings.TrimSpace(out))
			}
			if cerr == nil {
				t.Errorf("Client.Invalidate returned applied (seq %d) while the sidecar was stopped", seq)
			}
			if seq > maxSeq || seq < 5 {
				t.Errorf("Client.Invalidate numbered its record %d", seq)
			}
			// Running again, it applies them, and a purge is acknowledged.
			waitFor(t, func() bool { return !cached(t, d, victim) }, "the CLI's purge to be applied")
			if ok, out := cliPurge(t, dir, origin.URL+"/after"); !ok {
				t.Errorf("a purge after the forged record is never acknowledged: %s", out)
			}
			if v := d.metric(t, "zerohop_invalidation_seq_jumps_total"); v < 1 {
				t.Errorf("zerohop_invalidation_seq_jumps_total = %v, want the forged record counted", v)
			}
			if v := d.metric(t, "zerohop_invalidation_applied_seq"); v > float64(maxSeq) || v < 5 {
				t.Errorf("published sequence number %v", v)
			}
		})
	}
}

// TestPoisonedCheckpointIsDiscarded: a checkpoint claiming a published
// sequence number of 2^64-1, or one far beyond what the log holds, must
// not survive a restart: the sidecar discards it (counted) and a purge is
// acknowledged only once applied.
func TestPoisonedCheckpointIsDiscarded(t *testing.T) {
	for _, poison := range []uint64{math.MaxUint64, 1 << 40} {
		t.Run(strconv.FormatUint(poison, 10), func(t *testing.T) {
			origin := seqOrigin(t)
			dir := t.TempDir()
			d := startDaemonIn(t, dir)
			for i := range 3 {
				if ok, out := cliPurge(t, dir, fmt.Sprintf("%s/warmup/%d", origin.URL, i)); !ok {
					t.Fatalf("warm-up purge: %s", out)
				}
			}
			d.cmd.Process.Signal(syscall.SIGTERM)
			<-d.exited
			ckpt := filepath.Join(dir, "inval", "inval.log.ckpt")
			b, err := os.ReadFile(ckpt)
			if err != nil {
				t.Fatal(err)
			}
			if !json.Valid(b) {
				t.Fatalf("checkpoint %q", b)
			}
			b = regexp.MustCompile(`"published":\d+`).ReplaceAll(b, fmt.Appendf(nil, `"published":%d`, poison))
			if err := os.WriteFile(ckpt, b, 0o644); err != nil {
				t.Fatal(err)
			}

			d = startDaemonIn(t, dir)
			victim := origin.URL + "/victim"
			cached(t, d, victim)
			d.cmd.Process.Signal(syscall.SIGSTOP)
			ok, out := cliPurge(t, dir, victim)
			d.cmd.Process.Signal(syscall.SIGCONT)
			if ok {
				t.Errorf("zerohop purge said applied while the sidecar was stopped: %s", strings.TrimSpace(out))
			}
			if v := d.metric(t, "zerohop_invalidation_bad_checkpoints_total"); v != 1 {
				t.Errorf("zerohop_invalidation_bad_checkpoints_total = %v, want 1", v)
			}
			waitFor(t, func() bool { return !cached(t, d, victim) }, "the purge to be applied")
			if ok, out := cliPurge(t, dir, origin.URL+"/after"); !ok {
				t.Errorf("purge after the restart not acknowledged: %s", out)
			}
		})
	}
}
