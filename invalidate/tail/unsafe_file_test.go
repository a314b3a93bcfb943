package tail_test

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/zerohop/zerohop/invalidate/tail"
)

// TestCheckpointNeverFollowsSymlinks: symlinks the app planted at the
// checkpoint and at its temporary file are neither read nor written
// through: the tailer starts from the log's beginning, and its checkpoint
// replaces the links with a regular file; the targets are untouched.
func TestCheckpointNeverFollowsSymlinks(t *testing.T) {
	outside := t.TempDir()
	dir := t.TempDir()
	path := filepath.Join(dir, "inval.log")
	var targets []string
	for _, name := range []string{path + ".ckpt", path + ".ckpt.tmp"} {
		target := filepath.Join(outside, filepath.Base(name))
		// A checkpoint-shaped target: reading it through the link would
		// skip the log's first records.
		if err := os.WriteFile(target, []byte(`{"version":1,"offset":999999,"seq":999}`+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(target, name); err != nil {
			t.Fatal(err)
		}
		targets = append(targets, target)
	}
	l := openLog(t, path, "w")
	last := appendN(t, l, 10, "t")
	var rec recorder
	tl, stop := runTailer(t, tail.Options{Path: path, Apply: rec.apply})
	waitFor(t, 5*time.Second, "records applied", func() bool { return tl.Stats().AppliedSeq == last })
	stop()
	if got := rec.snapshot(); len(got) != 10 || got[0].Seq != 1 {
		t.Errorf("applied %d records; want 1..10 (the planted checkpoint must not be read)", len(got))
	}
	fi, err := os.Lstat(path + ".ckpt")
	if err != nil || !fi.Mode().IsRegular() {
		t.Errorf("checkpoint: %v %v; want a regular file replacing the link", fi, err)
	}
	for _, target := range targets {
		b, _ := os.ReadFile(target)
		fi, _ := os.Stat(target)
		if !bytes.Contains(b, []byte(`"seq":999`)) || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s written through a link: %v %q", target, fi.Mode().Perm(), b)
		}
	}
}
