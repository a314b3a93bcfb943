package proxy

import (
	"testing"
	"time"

	"github.com/zerohop/zerohop/proxy/httpcache"
)

func TestAppendHitStatus(t *testing.T) {
	for _, ttl := range []time.Duration{0, time.Second, 3599*time.Second + 999*time.Millisecond, -time.Millisecond, -time.Second, -90 * time.Second, 100 * 24 * time.Hour} {
		want := httpcache.CacheStatus{Hit: true, TTL: ttl, HasTTL: true}.String()
		if got := string(appendHitStatus(nil, ttl)); got != want {
			t.Errorf("ttl %v: %q; want %q", ttl, got, want)
		}
	}
}
