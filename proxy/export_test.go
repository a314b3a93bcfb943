package proxy

// RequestsSeen returns how many requests p has received, through net/http
// or the fast path.
func RequestsSeen(p *Proxy) int64 { return p.seen.Load() }

// DisableDirect makes p send every request through httputil.ReverseProxy,
// not the direct forwarder.
func DisableDirect(p *Proxy) { p.noDirect.Store(true) }

// FlightsInProgress returns how many upstream fetches p has not finished:
// a response reaches the app before its fetch's bookkeeping ends.
func FlightsInProgress(p *Proxy) int { return p.flights.Len() }
