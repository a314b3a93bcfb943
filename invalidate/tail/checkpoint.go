package tail

import (
	"encoding/hex"
	"encoding/json"
	"errors"
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
	if c.Seq > invalidate.MaxSeq || c.Published > invalidate.MaxSeq {
		return checkpoint{}, fmt.Errorf("%w: %s: sequence number %d (published %d) beyond the limit %d",
			ErrCheckpoint, path, c.Seq, c.Published, invalidate.MaxSeq)
	}
	return c, nil
}

func (c checkpoint) zero() bool { return c == checkpoint{} }

// checkLog checks the checkpoint against the log at path: it must not claim
// a sequence number above the highest one a reader believes in the log (a
// poisoned checkpoint would make every read-your-purge wait end at once; the
// app can write this directory). The tailer only ever checkpoints numbers
// it read in the log, and a rotation carries its position into the new
// file's mark; a log replaced or lost while the sidecar was down accounts
// for less, and the checkpoint is discarded then too, which only re-applies
// records. The scan reads the file once, at start.
func (c checkpoint) checkLog(path string) error {
	claim := max(c.Seq, c.Published)
	if claim == 0 {
		return nil
	}
	fo := invalidate.NewFollower(path, invalidate.Position{})
	defer fo.Close()
	var top uint64
	for {
		_, err := fo.Next()
		top = max(top, fo.Position().Seq)
		if errors.Is(err, invalidate.ErrGap) {
			continue
		}
		if err != nil {
			break
		}
	}
	if claim > top {
		return fmt.Errorf("%w: it claims sequence number %d, the log accounts for %d", ErrCheckpoint, claim, top)
	}
	return nil
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
