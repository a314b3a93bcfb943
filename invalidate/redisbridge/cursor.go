package redisbridge

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"

	"github.com/zerohop/zerohop/invalidate"
	"github.com/zerohop/zerohop/shm/safefile"
)

const cursorVersion = 1

// cursor is the bridge's durable state: how far the local log has been
// published (a log position) and the last stream entry consumed.
type cursor struct {
	Version int    `json:"version"`
	Pod     string `json:"pod"`
	Stream  string `json:"stream"`
	LastID  string `json:"last_id"`
	Dev     uint64 `json:"dev"`
	Ino     uint64 `json:"ino"`
	Head    string `json:"head"`
	Offset  int64  `json:"offset"`
	Seq     uint64 `json:"seq"`
}

func (c *cursor) position() invalidate.Position {
	head, _ := hex.DecodeString(c.Head)
	return invalidate.Position{File: invalidate.FileID{Dev: c.Dev, Ino: c.Ino}, Head: head, Off: c.Offset, Seq: c.Seq}
}

func (c *cursor) setPosition(p invalidate.Position) {
	c.Dev, c.Ino, c.Head, c.Offset, c.Seq = p.File.Dev, p.File.Ino, hex.EncodeToString(p.Head), p.Off, p.Seq
}

// readCursor reads the cursor file; missing is (zero, false, nil).
func readCursor(path string) (cursor, bool, error) {
	b, err := safefile.ReadFile(path) // a planted symlink is refused, not read
	if os.IsNotExist(err) {
		return cursor{}, false, nil
	}
	if err != nil {
		return cursor{}, false, fmt.Errorf("redisbridge: read cursor: %w", err)
	}
	var c cursor
	if err := json.Unmarshal(b, &c); err != nil || c.Version != cursorVersion || c.Offset < 0 {
		return cursor{}, false, fmt.Errorf("%w: %s: %q", ErrCursor, path, b)
	}
	if _, err := hex.DecodeString(c.Head); err != nil {
		return cursor{}, false, fmt.Errorf("%w: %s: head %q", ErrCursor, path, c.Head)
	}
	return c, true, nil
}

func (c cursor) write(path string) error {
	b, _ := json.Marshal(c)
	// A new temporary file renamed into place: a symlink planted at either
	// name in the shared directory is replaced, never written through.
	if err := safefile.WriteAtomic(path, append(b, '\n'), 0o644, false); err != nil {
		return fmt.Errorf("redisbridge: write cursor: %w", err)
	}
	return nil
}
