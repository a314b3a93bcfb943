package main_test

import (
	"bytes"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// purgeAdmin posts a purge of key and returns the status and body.
func (d *daemon) purgeAdmin(t *testing.T, key string) (int, string) {
	t.Helper()
	resp, err := http.PostForm("http://"+d.admin+"/purge", url.Values{"key": {key}, "timeout": {"3s"}})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// victim is a file outside the shared volume that a planted symlink points
// at: the sidecar must leave its content and mode alone.
type victim struct {
	path    string
	content []byte
	mode    os.FileMode
}

func newVictim(t *testing.T, dir, name string) victim {
	t.Helper()
	v := victim{path: filepath.Join(dir, name), content: []byte("precious " + name + "\n"), mode: 0o644}
	if err := os.WriteFile(v.path, v.content, v.mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(v.path, v.mode); err != nil {
		t.Fatal(err)
	}
	return v
}

func (v victim) check(t *testing.T, when string) {
	t.Helper()
	fi, err := os.Stat(v.path)
	if err != nil {
		t.Fatalf("%s: %s: %v", when, v.path, err)
	}
	b, _ := os.ReadFile(v.path)
	if !bytes.Equal(b, v.content) || fi.Mode().Perm() != v.mode {
		t.Errorf("%s: %s followed through a symlink: mode %v, content %q; want %v, %q",
			when, filepath.Base(v.path), fi.Mode().Perm(), b, v.mode, v.content)
	}
}

func plant(t *testing.T, target, link string) {
	t.Helper()
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
}

// TestSidecarRefusesPlantedSymlinks: the app can write the cache volume and
// its inval/ directory. Symlinks planted there, before the sidecar starts
// and while it runs, in place of the invalidation log, the checkpoint's
// temporary file, the cache file, its temporary file and the writer lock,
// must be refused or replaced, counted, and never followed: the files they
// point at keep their content and mode.
func TestSidecarRefusesPlantedSymlinks(t *testing.T) {
	outside := t.TempDir() // not in the shared volume
	dir := t.TempDir()
	inval := filepath.Join(dir, "inval")
	if err := os.Mkdir(inval, 0o2775); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(inval, "inval.log")

	t.Run("lock", func(t *testing.T) {
		lockDir := t.TempDir()
		v := newVictim(t, outside, "lock-target")
		plant(t, v.path, filepath.Join(lockDir, "cache.lock"))
		d, _ := launchDaemon(t, lockDir)
		if d.waitReady(t, 20*time.Second) {
			t.Error("the sidecar started with a symlink as its writer lock")
		} else if !strings.Contains(d.stderr.String(), "symbolic link") {
			t.Errorf("exit without a clear error: %v\n%s", d.err, d.stderr)
		}
		v.check(t, "lock")
	})

	t.Run("inval directory", func(t *testing.T) {
		volDir := t.TempDir()
		target := filepath.Join(outside, "inval-target")
		if err := os.Mkdir(target, 0o755); err != nil {
			t.Fatal(err)
		}
		plant(t, target, filepath.Join(volDir, "inval"))
		d, _ := launchDaemon(t, volDir)
		if d.waitReady(t, 20*time.Second) {
			t.Error("the sidecar started with a symlink as its inval/ directory")
		} else if !strings.Contains(d.stderr.String(), "symbolic link") {
			t.Errorf("exit without a clear error: %v\n%s", d.err, d.stderr)
		}
		fi, _ := os.Stat(target)
		ents, _ := os.ReadDir(target)
		if fi.Mode().Perm() != 0o755 || len(ents) != 0 {
			t.Errorf("the link's target directory was used: mode %v, %d files", fi.Mode().Perm(), len(ents))
		}
	})

	logV := newVictim(t, outside, "log-target")
	ckptV := newVictim(t, outside, "ckpt-target")
	shmV := newVictim(t, outside, "shm-target")
	shmTmpV := newVictim(t, outside, "shm-tmp-target")
	plant(t, logV.path, logPath)
	plant(t, ckptV.path, logPath+".ckpt.tmp")
	plant(t, shmV.path, filepath.Join(dir, "cache.shm"))
	plant(t, shmTmpV.path, filepath.Join(dir, "cache.shm.tmp"))
	all := []victim{logV, ckptV, shmV, shmTmpV}

	// Planted before the start: the sidecar comes up (a new cache file
	// replaces the link), refuses the log and says so.
	d, stop := launchDaemon(t, dir)
	if !d.waitReady(t, 20*time.Second) {
		t.Fatalf("exited: %v\n%s", d.err, d.stderr)
	}
	if fi, err := os.Lstat(filepath.Join(dir, "cache.shm")); err != nil || !fi.Mode().IsRegular() {
		t.Errorf("cache.shm after start: %v %v; want a regular file in place of the link", fi, err)
	}
	code, body := d.purgeAdmin(t, "http://example.test/a")
	if code == 200 || !strings.Contains(body, "symbolic link") {
		t.Errorf("purge through a symlinked log: %d %q; want a refusal naming the symlink", code, body)
	}
	out, err := exec.Command(bin, "purge", "--key", "http://example.test/a", "--cache-dir", dir, "--timeout", "2s").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "symbolic link") {
		t.Errorf("zerohop purge through a symlinked log: %v %s; want a refusal", err, out)
	}
	for _, v := range all {
		v.check(t, "planted before start")
	}
	if n := d.metric(t, "zerohop_unsafe_file_refusals_total"); n < 1 {
		t.Errorf("zerohop_unsafe_file_refusals_total = %v; want >= 1", n)
	}

	// The app removes its link: purges work, and the checkpoint is written
	// through a new temporary file, not the planted one.
	if err := os.Remove(logPath); err != nil {
		t.Fatal(err)
	}
	if code, body := d.purgeAdmin(t, "http://example.test/b"); code != 200 || !strings.Contains(body, `"applied":true`) {
		t.Fatalf("purge with a regular log: %d %s", code, body)
	}
	waitFor(t, func() bool { _, err := os.Lstat(logPath + ".ckpt"); return err == nil }, "the checkpoint")
	ckptV.check(t, "checkpoint written")

	// Swapped in while running: a link renamed over the open log.
	tmpLink := filepath.Join(inval, "swap")
	plant(t, logV.path, tmpLink)
	if err := os.Rename(tmpLink, logPath); err != nil {
		t.Fatal(err)
	}
	refusedBefore := d.metric(t, "zerohop_unsafe_file_refusals_total")
	code, body = d.purgeAdmin(t, "http://example.test/c")
	if code == 200 || !strings.Contains(body, "symbolic link") {
		t.Errorf("purge after the log was swapped for a symlink: %d %q; want a refusal", code, body)
	}
	if n := d.metric(t, "zerohop_unsafe_file_refusals_total"); n <= refusedBefore {
		t.Errorf("refusals %v after the swap, %v before; want more", n, refusedBefore)
	}
	for _, v := range all {
		v.check(t, "swapped in while running")
	}

	// Restarted with the link in place: no chmod through it.
	stop()
	d, _ = launchDaemon(t, dir)
	if !d.waitReady(t, 20*time.Second) {
		t.Fatalf("restart exited: %v\n%s", d.err, d.stderr)
	}
	d.purgeAdmin(t, "http://example.test/d")
	for _, v := range all {
		v.check(t, "after a restart")
	}
}
