package bench

import (
	"errors"
	"net/url"
	"time"

	"github.com/zerohop/zerohop/clients/go/zerohop"
)

// warmRestartScenario times a sidecar restart: SIGTERM (drain, clean
// close), start, ready, and the app's next read is again a shared-memory
// hit because the new sidecar adopted the file.
func (e *env) warmRestartScenario() scenario {
	cached := e.originURL + "/cache/item"
	return scenario{name: "warm-restart", modes: []string{modeClosed},
		warm: func() error { return e.warmVia(cached) },
		op: func(int) op {
			u, _ := url.Parse(cached)
			buf := make([]byte, 64<<10)
			return func(int) error {
				e.sidecar.Stop()
				wd, args := e.sidecarArgs()
				p, err := startProcess("zerohop", wd, e.opts.Zerohop, args...)
				if err != nil {
					return err
				}
				e.sidecar = p
				if err := waitHTTP("http://"+e.scAdmin+"/readyz", p); err != nil {
					return err
				}
				zc, err := zerohop.Open(e.scDir, nil)
				if err != nil {
					return err
				}
				defer zc.Close()
				deadline := time.Now().Add(5 * time.Second)
				for time.Now().Before(deadline) {
					if _, _, ok := zc.Get(buf, "GET", "http", u.Host, u.RequestURI(), nil); ok {
						return nil
					}
					time.Sleep(time.Millisecond)
				}
				return errors.New("no hit after restart")
			}
		}}
}
