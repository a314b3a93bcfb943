package proxy

import (
	"bytes"
	"net/http"
	"regexp"
	"regexp/syntax"
	"strings"
	"unsafe"

	"github.com/zerohop/zerohop/config"
	"github.com/zerohop/zerohop/proxy/internal/fastpath"
)

// Route matching. The routes are tried in configuration order and the
// first whose every condition holds wins, as before; the index only
// skips routes that cannot match, so the answer is the one a linear scan
// over the configuration gives (TestRouteIndexMatchesScan checks that on
// random tables).
//
// The index has two levels. First the host: the routes for the request's
// exact host, those for each wildcard suffix of it ("*.example.com" is
// found from "a.b.example.com" by the suffixes ".b.example.com" and
// ".example.com"), and those for any host. Then, in each, a byte trie of
// the literal prefix every path condition implies: a path_exact or
// path_prefix itself, the literal start of a path_regex, "" for a route
// without one. Walking the request's path through the trie meets exactly
// the routes whose literal prefix the path starts with; each node keeps
// its routes in configuration order, so the walk checks them in order and
// stops at the first route number not below the best match found so far.

// routeConds are the conditions beyond host, path prefix and exact path,
// methods and exact header values.
type routeConds struct {
	pathRE  *regexp.Regexp
	pathLit string      // a literal every path pathRE matches contains: tested first
	headers []fieldCond // header_rules
	query   []fieldCond
}

// fieldCond is a compiled config.FieldMatch.
type fieldCond struct {
	name   string // canonical header name, or the query parameter's name
	kind   condKind
	val    string
	re     *regexp.Regexp
	invert bool
}

type condKind uint8

const (
	condPresent condKind = iota
	condExact
	condPrefix
	condRegex
)

func compileFieldConds(ms []config.FieldMatch, header bool) []fieldCond {
	var out []fieldCond
	for _, m := range ms {
		c := fieldCond{name: m.Name, invert: m.Invert}
		if header {
			c.name = http.CanonicalHeaderKey(m.Name)
		}
		switch {
		case m.Exact != "":
			c.kind, c.val = condExact, m.Exact
		case m.Prefix != "":
			c.kind, c.val = condPrefix, m.Prefix
		case m.Regex != "":
			c.kind = condRegex
			c.re, _ = config.CompileMatchRegex(m.Regex) // validated
		}
		out = append(out, c)
	}
	return out
}

func (r *route) compileConds(m config.Match) {
	if m.PathRegex != "" {
		r.conds.pathRE, _ = config.CompileMatchRegex(m.PathRegex) // validated
		r.conds.pathLit = requiredLiteral(m.PathRegex)
	}
	r.conds.headers = compileFieldConds(m.HeaderRules, true)
	r.conds.query = compileFieldConds(m.Query, false)
}

// test reports whether a value (found says whether the field or parameter
// is there at all) satisfies c.
func (c *fieldCond) test(v string, found bool) bool {
	var ok bool
	switch c.kind {
	case condPresent:
		ok = found
	case condExact:
		ok = found && v == c.val
	case condPrefix:
		ok = found && strings.HasPrefix(v, c.val)
	case condRegex:
		ok = found && c.re.MatchString(v)
	}
	return ok != c.invert
}

// matchConds checks routeConds; the other conditions hold already.
func (r *route) matchConds(f routeFields, path, query string) bool {
	c := &r.conds
	for i := range c.headers {
		h := &c.headers[i]
		v := f.FieldValue(h.name)
		if !h.test(v, v != "") {
			return false
		}
	}
	for i := range c.query {
		q := &c.query[i]
		v, found := queryParam(query, q.name)
		if strings.ContainsAny(v, "%+") {
			// Decoded on the heap: the one allocation matching may make,
			// for a value that is percent-encoded.
			v = string(unescapeQuery(nil, v))
		}
		if !q.test(v, found) {
			return false
		}
	}
	// The regular expression last, the dearest test, behind a substring
	// check that rejects most paths for a few nanoseconds.
	if c.pathRE != nil && (!strings.Contains(path, c.pathLit) || !c.pathRE.MatchString(path)) {
		return false
	}
	return true
}

// requiredLiteral returns the longest literal that every string re
// matches contains: the longest case-sensitive literal among the
// top-level pieces of its concatenation; "" if there is none.
func requiredLiteral(re string) string {
	t, err := syntax.Parse(re, syntax.Perl)
	if err != nil {
		return ""
	}
	t = t.Simplify()
	for t.Op == syntax.OpCapture {
		t = t.Sub[0]
	}
	pieces := []*syntax.Regexp{t}
	if t.Op == syntax.OpConcat {
		pieces = t.Sub
	}
	best := ""
	for _, p := range pieces {
		for p.Op == syntax.OpCapture {
			p = p.Sub[0]
		}
		if p.Op == syntax.OpLiteral && p.Flags&syntax.FoldCase == 0 && len(string(p.Rune)) > len(best) {
			best = string(p.Rune)
		}
	}
	return best
}

// queryParam returns the first value of the query parameter name in a raw
// query, as it is there (still percent-encoded), and whether it is there.
// Names are compared percent-decoded ('+' as space).
func queryParam(query, name string) (string, bool) {
	for query != "" {
		var pair string
		pair, query, _ = strings.Cut(query, "&")
		k, v, _ := strings.Cut(pair, "=")
		if k != name {
			if !strings.ContainsAny(k, "%+") {
				continue
			}
			var buf [128]byte
			if kd := unescapeQuery(buf[:0], k); string(kd) != name {
				continue
			}
		}
		return v, true
	}
	return "", false
}

// unescapeQuery appends s, percent-decoded with '+' as a space, to dst.
func unescapeQuery(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '+':
			dst = append(dst, ' ')
		case c == '%' && i+2 < len(s) && unhex(s[i+1]) >= 0 && unhex(s[i+2]) >= 0:
			dst = append(dst, byte(unhex(s[i+1])<<4|unhex(s[i+2])))
			i += 2
		default:
			dst = append(dst, c)
		}
	}
	return dst
}

func unhex(c byte) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case 'a' <= c && c <= 'f':
		return int(c - 'a' + 10)
	case 'A' <= c && c <= 'F':
		return int(c - 'A' + 10)
	}
	return -1
}

// literalPrefix is the path prefix every path the route matches starts
// with, as far as it can tell.
func (r *route) literalPrefix() string {
	switch {
	case r.pathExact != "":
		return r.pathExact
	case r.pathPrefix != "":
		return r.pathPrefix
	case r.conds.pathRE != nil:
		p, _ := r.conds.pathRE.LiteralPrefix()
		return p
	}
	return ""
}

// routeIndex finds the first matching route without trying them all.
type routeIndex struct {
	routes []*route
	exact  map[string]*trieNode // by lower-case host
	wild   map[string]*trieNode // by suffix: ".example.com" for "*.example.com"
	any    *trieNode
}

// trieNode is a radix-tree node of literal path prefixes: the edge from
// its parent is label, and a node's routes are those whose prefix ends
// here, as route numbers (positions in the configuration), ascending.
// keys[i] is the first byte of kids[i].label.
type trieNode struct {
	label  string
	keys   []byte
	kids   []*trieNode
	routes []int32
}

func (n *trieNode) child(c byte) *trieNode {
	if i := bytes.IndexByte(n.keys, c); i >= 0 {
		return n.kids[i]
	}
	return nil
}

func (n *trieNode) insert(prefix string, i int32) {
	for prefix != "" {
		k := n.child(prefix[0])
		if k == nil {
			k = &trieNode{label: prefix}
			n.keys = append(n.keys, prefix[0])
			n.kids = append(n.kids, k)
			n = k
			break
		}
		common := 0
		for common < len(k.label) && common < len(prefix) && k.label[common] == prefix[common] {
			common++
		}
		if common < len(k.label) {
			// Split k: a node for the common part, k below it.
			mid := &trieNode{label: k.label[:common], keys: []byte{k.label[common]}, kids: []*trieNode{k}}
			k.label = k.label[common:]
			n.kids[bytes.IndexByte(n.keys, mid.label[0])] = mid
			k = mid
		}
		n, prefix = k, prefix[common:]
	}
	n.routes = append(n.routes, i) // routes are inserted in order
}

func newRouteIndex(routes []*route) *routeIndex {
	ix := &routeIndex{routes: routes, exact: map[string]*trieNode{}, wild: map[string]*trieNode{}, any: &trieNode{}}
	for i, r := range routes {
		t := ix.any
		switch {
		case r.host == "":
		case r.wildcard:
			if t = ix.wild[r.host]; t == nil {
				t = &trieNode{}
				ix.wild[r.host] = t
			}
		default:
			if t = ix.exact[r.host]; t == nil {
				t = &trieNode{}
				ix.exact[r.host] = t
			}
		}
		t.insert(r.literalPrefix(), int32(i))
	}
	return ix
}

// find returns the first route, in configuration order, that the request
// matches (host lower-cased, without port), or nil.
func (ix *routeIndex) find(method string, f routeFields, host, path, query string) *route {
	best := int32(len(ix.routes))
	if t := ix.exact[host]; t != nil {
		best = ix.walk(t, best, method, f, host, path, query)
	}
	if len(ix.wild) > 0 {
		for i := 1; i < len(host); i++ {
			if host[i] == '.' {
				if t := ix.wild[host[i:]]; t != nil {
					best = ix.walk(t, best, method, f, host, path, query)
				}
			}
		}
	}
	best = ix.walk(ix.any, best, method, f, host, path, query)
	if int(best) < len(ix.routes) {
		return ix.routes[best]
	}
	return nil
}

// walk follows path through the trie from n and returns the lowest route
// number below best that matches, or best.
func (ix *routeIndex) walk(n *trieNode, best int32, method string, f routeFields, host, path, query string) int32 {
	for rest := path; ; {
		for _, i := range n.routes {
			if i >= best {
				break
			}
			if ix.routes[i].match(method, f, host, path, query) {
				best = i
				break
			}
		}
		if rest == "" {
			return best
		}
		if n = n.child(rest[0]); n == nil || !strings.HasPrefix(rest, n.label) {
			return best
		}
		rest = rest[len(n.label):]
	}
}

// fastHead is the fast path's parsed head as the route conditions read
// it.
type fastHead fastpath.Head

func (h *fastHead) FieldIs(name, value string) bool { return (*fastpath.Head)(h).FieldIs(name, value) }
func (h *fastHead) FieldSet(name string) bool       { return (*fastpath.Head)(h).FieldSet(name) }

// FieldValue aliases the connection's read buffer: valid while the head
// is, and never kept.
func (h *fastHead) FieldValue(name string) string {
	v := (*fastpath.Head)(h).Get(name)
	return unsafe.String(unsafe.SliceData(v), len(v))
}

func (f requestFields) FieldValue(name string) string { return http.Header(f).Get(name) }
