package invalidate

import (
	"context"
	"fmt"
	"runtime"
	"time"
)

// AppliedSeq is anything that reports the sequence number of the last
// record applied to the cache: *shm.Reader (from the mapping's header, an
// atomic load) and the tailer.
type AppliedSeq interface {
	InvalidationSeq() uint64
}

// WaitApplied's polling: a short spin, then sleeps with backoff.
const (
	waitSpin       = 5 * time.Millisecond
	waitMinBackoff = 50 * time.Microsecond
	waitMaxBackoff = 2 * time.Millisecond
)

// WaitApplied waits until src reports seq applied, or ctx ends. It polls:
// for the first 5ms it spins on the load, yielding now and then (the
// sidecar usually applies a record within tens of microseconds, at worst a
// few milliseconds, and many kernels cannot sleep for less than a
// millisecond, which would add a whole sleep to the wait), then it sleeps
// from 50µs doubling to 2ms. A purge is rare; the spin is bounded.
// Append then WaitApplied is read-your-purge.
func WaitApplied(ctx context.Context, src AppliedSeq, seq uint64) error {
	if src.InvalidationSeq() >= seq {
		return nil
	}
	spinUntil := time.Now().Add(waitSpin)
	for i := 1; time.Now().Before(spinUntil) && ctx.Err() == nil; i++ {
		if src.InvalidationSeq() >= seq {
			return nil
		}
		if i%256 == 0 {
			runtime.Gosched() // let this process's other goroutines run
		}
	}
	backoff := waitMinBackoff
	t := time.NewTimer(backoff)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			if src.InvalidationSeq() >= seq {
				return nil
			}
			return fmt.Errorf("invalidate: waiting for record %d to be applied (applied: %d): %w",
				seq, src.InvalidationSeq(), ctx.Err())
		case <-t.C:
		}
		if src.InvalidationSeq() >= seq {
			return nil
		}
		backoff = min(2*backoff, waitMaxBackoff)
		t.Reset(backoff)
	}
}
