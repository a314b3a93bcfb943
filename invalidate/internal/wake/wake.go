// Package wake turns file-system events on one file into wake-ups, with a
// polling fallback: the tailer and the fan-out bridge wait on it instead of
// sleeping.
package wake

import (
	"path/filepath"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"
)

// Waker delivers a wake-up on C after the watched file is written,
// created, renamed or removed, and at least every poll interval whatever
// happens (inotify can be unavailable, or miss a file replaced under a
// symlinked directory). Wake-ups coalesce: C has a buffer of one.
type Waker struct {
	C <-chan struct{}

	c      chan struct{}
	w      *fsnotify.Watcher
	ticker *time.Ticker
	stop   chan struct{}
	wg     sync.WaitGroup
}

// New watches path's directory for events on path's file name (the
// directory, not the file, so that a rotated or replaced file is seen) and
// ticks every poll. If fsnotify cannot be used it returns a polling-only
// Waker and the error, for the caller to log.
func New(path string, poll time.Duration) (*Waker, error) {
	c := make(chan struct{}, 1)
	k := &Waker{C: c, c: c, ticker: time.NewTicker(poll), stop: make(chan struct{})}
	w, err := fsnotify.NewWatcher()
	if err == nil {
		if err = w.Add(filepath.Dir(path)); err != nil {
			w.Close()
			w = nil
		}
	}
	k.w = w
	k.wg.Add(1)
	go k.loop(filepath.Clean(path))
	return k, err
}

// Kick delivers a wake-up now (after an in-process append, say).
func (k *Waker) Kick() {
	select {
	case k.c <- struct{}{}:
	default:
	}
}

func (k *Waker) loop(path string) {
	defer k.wg.Done()
	var events <-chan fsnotify.Event
	var errs <-chan error
	if k.w != nil {
		events, errs = k.w.Events, k.w.Errors
	}
	for {
		select {
		case <-k.stop:
			return
		case ev, ok := <-events:
			if !ok {
				events = nil
				continue
			}
			if filepath.Clean(ev.Name) == path {
				k.Kick()
			}
		case _, ok := <-errs:
			if !ok {
				errs = nil
				continue
			}
			k.Kick() // overflow: events were lost, look anyway
		case <-k.ticker.C:
			k.Kick()
		}
	}
}

// Close stops the Waker.
func (k *Waker) Close() error {
	close(k.stop)
	k.ticker.Stop()
	var err error
	if k.w != nil {
		err = k.w.Close()
	}
	k.wg.Wait()
	return err
}
