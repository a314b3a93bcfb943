package bench

import (
	"context"
	"path/filepath"
	"time"

	"github.com/zerohop/zerohop/invalidate"
	"github.com/zerohop/zerohop/shm"
)

// invalidationScenario times what an app's Invalidate costs: append a purge
// to the sidecar's log, then wait until the cache header says it has been
// applied (read-your-purge). The sidecar is the other process.
func (e *env) invalidationScenario() scenario {
	var lg *invalidate.Log
	var r *shm.Reader
	return scenario{name: "invalidation", modes: []string{modeClosed}, server: func() int { return e.sidecar.pid() },
		warm: func() error {
			var err error
			if lg, err = invalidate.OpenLog(filepath.Join(e.scDir, "inval", "inval.log"), &invalidate.LogOptions{Origin: "bench"}); err != nil {
				return err
			}
			r, err = shm.Open(e.scDir, nil)
			return err
		},
		op: func(int) op {
			rec := invalidate.KeyRecord(e.originURL+"/cache/purged", invalidate.Hard)
			return func(int) error {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				seq, err := lg.Append(ctx, rec)
				if err != nil {
					return err
				}
				return invalidate.WaitApplied(ctx, r, seq)
			}
		}}
}
