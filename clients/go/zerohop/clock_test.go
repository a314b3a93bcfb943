package zerohop

import (
	"testing"
	"time"
)

// TestClock checks the one-read clock against time.Now, and that it
// follows a moved offset (what a wall clock step looks like) by the next
// resync.
func TestClock(t *testing.T) {
	var c clock
	c.init()
	for i := 0; i < 1000; i++ {
		before := time.Now().UnixMilli()
		got := c.nowMs()
		after := time.Now().UnixMilli()
		if got < before-1 || got > after+1 {
			t.Fatalf("nowMs %d outside [%d, %d]", got, before, after)
		}
	}
	c.offset.Add(int64(time.Hour)) // as if the wall clock had stepped back an hour
	if got := c.nowMs(); got < time.Now().Add(50*time.Minute).UnixMilli() {
		t.Fatalf("offset not used: %d", got)
	}
	time.Sleep(clockResync + 10*time.Millisecond)
	if got, now := c.nowMs(), time.Now().UnixMilli(); got < now-1 || got > now+1 {
		t.Fatalf("after resync nowMs %d, time.Now %d", got, now)
	}
}
