package tail

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"

	"github.com/zerohop/zerohop/invalidate"
	"github.com/zerohop/zerohop/shm/safefile"
)

// checkpointVersion is the version of the checkpoint file's JSON.
const checkpointVersion = 1

// checkpoint is the tailer's durable position: everything before Offset in
// the file (Dev, Ino, Head) is applied, the last record applied there has
// sequence number Seq, and Published is the highest sequence number ever
// published to the cache (never lowered, even if the log is replaced by a
// file numbered from lower).
type checkpoint struct {
	Version   int    `json:"version"`
	Dev       uint64 `json:"dev"`
	Ino       uint64 `json:"ino"`
	Head      string `json:"head"` // hex of the file's first bytes
	Offset    int64  `json:"offset"`
	Seq       uint64 `json:"seq"`
	Published uint64 `json:"published"`
}

func (c checkpoint) position() invalidate.Position {
	head, _ := hex.DecodeString(c.Head)
	return invalidate.Position{File: invalidate.FileID{Dev: c.Dev, Ino: c.Ino}, Head: head, Off: c.Offset, Seq: c.Seq}
}

func checkpointAt(p invalidate.Position, published uint64) checkpoint {
	return checkpoint{Version: checkpointVersion, Dev: p.File.Dev, Ino: p.File.Ino, Head: hex.EncodeToString(p.Head),
		Offset: p.Off, Seq: p.Seq, Published: published}
}

// readCheckpoint reads a checkpoint; a missing file is the zero checkpoint
// (start from the beginning of the log).
func readCheckpoint(path string) (checkpoint, error) {
	b, err := safefile.ReadFile(path) // a planted symlink is refused, not read
	if os.IsNotExist(err) {
		return checkpoint{}, nil
	}
	if err != nil {
		return checkpoint{}, fmt.Errorf("tail: read checkpoint: %w", err)
	}
	var c checkpoint
	if err := json.Unmarshal(b, &c); err != nil || c.Version != checkpointVersion || c.Offset < 0 {
		return checkpoint{}, fmt.Errorf("%w: %s: %q", ErrCheckpoint, path, b)
	}
	if _, err := hex.DecodeString(c.Head); err != nil {
		return checkpoint{}, fmt.Errorf("%w: %s: head %q", ErrCheckpoint, path, c.Head)
	}
	return c, nil
}

func (c checkpoint) write(path string, sync bool) error {
	b, _ := json.Marshal(c)
	// Through a new temporary file and a rename, so that a crash leaves the
	// old content or the new, and a symlink the app planted at either name
	// is replaced, never written through.
	if err := safefile.WriteAtomic(path, append(b, '\n'), 0o644, sync); err != nil {
		return fmt.Errorf("tail: write checkpoint: %w", err)
	}
	return nil
}
