package proxy

// RequestsSeen returns how many requests p has received, through net/http
// or the fast path.
func RequestsSeen(p *Proxy) int64 { return p.seen.Load() }

// DisableDirect makes p send every request through httputil.ReverseProxy,
// not the direct forwarder.
func DisableDirect(p *Proxy) { p.noDirect.Store(true) }
