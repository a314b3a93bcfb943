package proxy

// RequestsSeen returns how many requests p has received, through net/http
// or the fast path.
func RequestsSeen(p *Proxy) int64 { return p.seen.Load() }
