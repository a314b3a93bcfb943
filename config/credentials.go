package config

import (
	"net/textproto"
	"strings"
	"time"
)

// Credentials are added by the sidecar to the requests a cluster's routes
// send upstream, so that the app never holds the secret (docs/egress.md,
// "Outbound credentials"). The value is read from a file, typically a
// mounted Kubernetes Secret, and re-read when the file changes: replacing
// it (a rename, or Kubernetes' ..data symlink swap) rotates the
// credential without a restart. A file that is missing, empty or invalid
// at a check keeps the value in use; the failure is counted in
// zerohop_credential_reloads_total{result="error"} and logged with the
// path, never the value. At start (and at a reload that adds or changes
// the section) the file must be readable and valid.
//
// The credential replaces a field of the same name the app sent (its own
// Authorization, for bearer and basic): the sidecar is the authority for
// the cluster's credential. It is added after the cache decision, to the
// upstream request only; it never appears in the cache key, the access
// log, metrics or a response (a response field echoing it is removed
// before the response is stored or forwarded).
//
//	clusters:
//	  - name: payments
//	    endpoints: [{url: "https://api.payments.example"}]
//	    credentials: {type: bearer, file: /var/run/secrets/payments/token}
type Credentials struct {
	// Type is how the credential is sent: "header" (the file's value in
	// the field Header, e.g. an API key), "bearer" ("Authorization:
	// Bearer <value>") or "basic" ("Authorization: Basic ..." of the
	// file's "user:password"). Required.
	Type string `yaml:"type"`
	// Header is the field name for type header ("X-Api-Key"). Required
	// for type header; not allowed for the others.
	Header string `yaml:"header"`
	// File holds the value: the token or key, or "user:password" for
	// basic; surrounding whitespace and the trailing newline are
	// ignored. Required. Replace it atomically (write a new file and
	// rename it over, as Kubernetes does): a half-written file is read
	// as it is.
	File string `yaml:"file"`
	// CheckInterval is how often the file is checked for a change (its
	// identity, size and modification time, after following symbolic
	// links), on the first upstream request after the interval; the
	// file is read only when it changed. Default 1s; must be > 0.
	CheckInterval time.Duration `yaml:"check_interval"`
	// CachePartition keeps the responses fetched with this credential
	// apart in the cache: it joins the cache key, so two credentials never
	// share an entry, and a rotation (same partition, new value) keeps
	// the entries. Default "" = the cluster's name; clusters that give
	// the same partition share entries (the operator says they may).
	// "none" keys the responses by URL alone, like any other: the app's
	// client can then read them from shared memory without asking the
	// sidecar, and the operator asserts that no request for those URLs
	// goes out with another credential or none. With a partition the
	// app's client cannot build the key, so it always asks the sidecar,
	// which serves the hit from the same cache (one loopback hop).
	CachePartition string `yaml:"cache_partition"`
}

// Credential types.
const (
	CredentialHeader = "header"
	CredentialBearer = "bearer"
	CredentialBasic  = "basic"
)

// DefaultCredentialCheckInterval is Credentials.CheckInterval's default.
const DefaultCredentialCheckInterval = time.Second

// setDefaults fills the defaults of a credentials section the file sets.
func (c *Credentials) setDefaults() { c.CheckInterval = DefaultCredentialCheckInterval }

// credentials checks a cluster's credentials section (p is its path).
func (v *validator) credentials(p string, c *Credentials) {
	if c == nil {
		return
	}
	switch c.Type {
	case CredentialHeader:
		if c.Header == "" {
			v.errorf(p+".header", "required for type header: the field to send the value in, e.g. X-Api-Key")
		} else if !isToken(c.Header) {
			v.errorf(p+".header", "invalid header name %q", clip(c.Header))
		} else if owned := textproto.CanonicalMIMEHeaderKey(c.Header); credentialForbidden[owned] {
			v.errorf(p+".header", "%q is set by the proxy or the framing, not by a credential", owned)
		}
	case CredentialBearer, CredentialBasic:
		if c.Header != "" {
			v.errorf(p+".header", "only for type header: type %s sends Authorization", c.Type)
		}
	case "":
		v.errorf(p+".type", "required: header, bearer or basic")
	default:
		v.errorf(p+".type", "invalid type %q: must be header, bearer or basic", clip(c.Type))
	}
	if strings.TrimSpace(c.File) == "" {
		v.errorf(p+".file", "required: the file holding the credential (a mounted secret)")
	}
	if c.CheckInterval <= 0 {
		v.errorf(p+".check_interval", "must be > 0, got %s", c.CheckInterval)
	}
	if c.CachePartition != "" && c.CachePartition != "none" && !nameRE.MatchString(c.CachePartition) {
		v.errorf(p+".cache_partition", "invalid partition %q: use letters, digits, '-', '_' and '.', or none", clip(c.CachePartition))
	}
}

// credentialForbidden are fields a credential may not be sent in.
var credentialForbidden = map[string]bool{
	"Host": true, "Content-Length": true, "Transfer-Encoding": true, "Connection": true, "Keep-Alive": true,
	"Te": true, "Trailer": true, "Upgrade": true, "Proxy-Connection": true, "X-Request-Id": true,
	"Forwarded": true, "X-Forwarded-For": true, "X-Forwarded-Host": true, "X-Forwarded-Proto": true, "Via": true,
}
