package invalidate_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zerohop/zerohop/invalidate"
)

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

type seqSource struct{ atomic.Uint64 }

func (s *seqSource) InvalidationSeq() uint64 { return s.Load() }

func TestWaitApplied(t *testing.T) {
	var src seqSource
	src.Store(5)
	if err := invalidate.WaitApplied(context.Background(), &src, 5); err != nil {
		t.Fatal(err)
	}
	go func() {
		time.Sleep(20 * time.Millisecond)
		src.Store(9)
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	if err := invalidate.WaitApplied(ctx, &src, 8); err != nil {
		t.Fatal(err)
	}
	if el := time.Since(start); el > time.Second {
		t.Fatalf("waited %v", el)
	}
	short, cancel2 := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel2()
	if err := invalidate.WaitApplied(short, &src, 10); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v", err)
	}
}

// TestImportClosure keeps the core package light: the app-side client
// imports it to append, so it may reach only the standard library,
// golang.org/x/sys and the shm package (with shm's own dependencies).
func TestImportClosure(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "github.com/zerohop/zerohop/invalidate").Output()
	if err != nil {
		t.Skipf("go list unavailable: %v", err)
	}
	allowed := []string{"golang.org/x/sys/", "github.com/zerohop/zerohop/shm", "github.com/zerohop/zerohop/invalidate",
		"github.com/cespare/xxhash/", "github.com/edsrzf/mmap-go"}
	for _, d := range strings.Fields(string(out)) {
		if !strings.Contains(strings.Split(d, "/")[0], ".") {
			continue // standard library
		}
		ok := false
		for _, a := range allowed {
			ok = ok || strings.HasPrefix(d, a)
		}
		if !ok || strings.HasPrefix(d, "github.com/zerohop/zerohop/invalidate/") {
			t.Errorf("invalidate imports %s", d)
		}
	}
}
