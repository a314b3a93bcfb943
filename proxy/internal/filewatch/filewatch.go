// Package filewatch reloads a small file (keys, secrets) when it changes:
// rewritten in place, replaced by a rename, or swapped the Kubernetes way
// (a Secret volume renames a new "..data" symlink into place). It watches
// the file's directory with fsnotify, so that a replaced file is seen
// whatever its inode, and also compares the file's bytes every
// PollInterval, which covers file systems where fsnotify sees nothing.
package filewatch

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"
)

// Options configure Watch.
type Options struct {
	// Path of the file. Required.
	Path string
	// Load receives the file's bytes each time they change (not at start:
	// the caller loaded them). An error keeps the caller's old version; it
	// goes to OnError.
	Load func(data []byte) error
	// OnError receives read and Load errors. Optional.
	OnError func(error)
	// Debounce is the wait after the last event of a burst. Default 50ms.
	Debounce time.Duration
	// PollInterval is how often the bytes are compared regardless of
	// events. Default 10s.
	PollInterval time.Duration
}

// Watch runs until ctx is done. last is the content the caller loaded.
func Watch(ctx context.Context, o Options, last []byte) {
	if o.Debounce <= 0 {
		o.Debounce = 50 * time.Millisecond
	}
	if o.PollInterval <= 0 {
		o.PollInterval = 10 * time.Second
	}
	var events <-chan fsnotify.Event
	if fw, err := fsnotify.NewWatcher(); err == nil {
		defer fw.Close()
		dir := filepath.Dir(o.Path)
		if fw.Add(dir) == nil {
			events = fw.Events
			// A symlinked file (a Secret's key -> ..data/key): its target's
			// directory too.
			if real, err := filepath.EvalSymlinks(o.Path); err == nil && filepath.Dir(real) != dir {
				fw.Add(filepath.Dir(real))
			}
		}
		go func() { // drain errors; polling covers what is missed
			for range fw.Errors {
			}
		}()
	}
	poll := time.NewTicker(o.PollInterval)
	defer poll.Stop()
	debounce := time.NewTimer(time.Hour)
	debounce.Stop()
	check := func() {
		data, err := os.ReadFile(o.Path)
		if err != nil {
			if o.OnError != nil {
				o.OnError(err)
			}
			return
		}
		if bytes.Equal(data, last) {
			return
		}
		if err := o.Load(data); err != nil {
			if o.OnError != nil {
				o.OnError(err)
			}
		}
		// Remembered either way: a broken version is reported once, not
		// at every poll.
		last = data
	}
	for {
		select {
		case <-ctx.Done():
			return
		case _, ok := <-events:
			if !ok {
				events = nil
				continue
			}
			debounce.Reset(o.Debounce)
		case <-debounce.C:
			check()
		case <-poll.C:
			check()
		}
	}
}
