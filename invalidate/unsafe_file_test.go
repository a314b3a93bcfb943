package invalidate_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/zerohop/zerohop/invalidate"
	"github.com/zerohop/zerohop/shm/safefile"
)

// TestLogRefusesNonRegularFiles: the log's directory is writable by the
// app. A symlink or FIFO at the log path, there before the first append or
// swapped in after it, is refused with ErrUnsafe (never appended through,
// never blocked on), and the follower refuses it too; the link's target
// keeps its content and mode.
func TestLogRefusesNonRegularFiles(t *testing.T) {
	target := filepath.Join(t.TempDir(), "target")
	content := []byte("not a log\n")
	if err := os.WriteFile(target, content, 0o644); err != nil {
		t.Fatal(err)
	}
	untouched := func(when string) {
		t.Helper()
		b, _ := os.ReadFile(target)
		fi, _ := os.Stat(target)
		if !bytes.Equal(b, content) || fi.Mode().Perm() != 0o644 {
			t.Errorf("%s: target changed: %v %q", when, fi.Mode().Perm(), b)
		}
	}
	for _, tt := range []struct {
		name  string
		swap  bool // after a first successful append
		plant func(path string) error
	}{
		{"symlink before", false, func(p string) error { return os.Symlink(target, p) }},
		{"dangling symlink before", false, func(p string) error { return os.Symlink(target+".missing", p) }},
		{"fifo before", false, func(p string) error { return syscall.Mkfifo(p, 0o666) }},
		{"symlink swapped in", true, func(p string) error {
			os.Symlink(target, p+".new")
			return os.Rename(p+".new", p)
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "inval.log")
			l := openLog(t, path, "t")
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if tt.swap {
				if _, err := l.Append(ctx, invalidate.AllRecord(invalidate.Hard)); err != nil {
					t.Fatal(err)
				}
			}
			if err := tt.plant(path); err != nil {
				t.Fatal(err)
			}
			before := safefile.Refused()
			_, err := l.Append(ctx, invalidate.TagRecord("x", invalidate.Hard))
			if !errors.Is(err, safefile.ErrUnsafe) {
				t.Errorf("Append: %v; want ErrUnsafe", err)
			}
			if safefile.Refused() <= before {
				t.Error("the refusal was not counted")
			}
			fo := invalidate.NewFollower(path, invalidate.Position{})
			defer fo.Close()
			if _, err := fo.Next(); !errors.Is(err, safefile.ErrUnsafe) {
				t.Errorf("Follower.Next: %v; want ErrUnsafe", err)
			}
			if _, err := os.Stat(target + ".missing"); !errors.Is(err, os.ErrNotExist) {
				t.Error("a dangling link's target was created")
			}
			untouched(tt.name)
		})
	}
}
