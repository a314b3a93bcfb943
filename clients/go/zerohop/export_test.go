package zerohop

// NewUnmapped is the client Open returns off Linux, for the tests that run
// on Linux: no mapping, every request sent to the sidecar.
func NewUnmapped(opts *Options) (*Client, error) { return newClient(nil, opts) }
