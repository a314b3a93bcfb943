package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Load reads the YAML file at path and returns the built-in defaults
// overlaid with the file, validated. Problems in the file are reported as
// an ErrorList naming path, line and field; a file that cannot be read is
// reported as a plain error wrapping the os error (so errors.Is(err,
// fs.ErrNotExist) works).
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return Parse(path, data)
}

// Parse is Load for bytes already in memory; name is used in error
// messages. Keys not in the schema are errors, except top-level keys
// starting with "x-", which are ignored so they can hold YAML anchors:
//
//	x-timeouts: &timeouts {connect_timeout: 1s, response_timeout: 10s}
//	clusters:
//	  - {name: api, <<: *timeouts, endpoints: [{url: "http://api:8080"}]}
//
// An empty file yields Default().
func Parse(name string, data []byte) (*Config, error) {
	c := base()
	d := &decoder{file: name, pos: map[string]position{}, failed: map[string]bool{}}
	if root := d.parse(data); root != nil {
		d.root(root, c)
	}
	if d.nodes > maxNodes {
		// The config is only partly read; validating it would add noise.
		return nil, d.errs.err()
	}
	c.derive()
	c.deriveTLS(d.pos)
	v := &validator{file: name, pos: d.pos, failed: d.failed}
	v.config(c)
	errs := append(d.errs, v.errs...)
	if err := errs.err(); err != nil {
		return nil, err
	}
	return c, nil
}

// maxNodes bounds the work one document may cause. Aliases let a small
// file reference the same subtree many times ("billion laughs"); a real
// config has a few thousand nodes at most.
const maxNodes = 200_000

type position struct{ line, col int }

type decoder struct {
	file   string
	errs   ErrorList
	pos    map[string]position // field path -> where it was set
	failed map[string]bool     // field paths whose value could not be decoded
	nodes  int
}

func (d *decoder) errorf(at *yaml.Node, path, format string, args ...any) {
	e := &FieldError{File: d.file, Field: path, Msg: fmt.Sprintf(format, args...)}
	if at != nil {
		e.Line, e.Column = at.Line, at.Column
	}
	d.errs = append(d.errs, e)
}

// fail records an undecodable value; validation then stays quiet about
// that field so one mistake is not reported twice.
func (d *decoder) fail(at *yaml.Node, path, format string, args ...any) {
	d.failed[path] = true
	d.errorf(at, path, format, args...)
}

var yamlLineErr = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// parse returns the document's root node, nil for an empty document.
func (d *decoder) parse(data []byte) (root *yaml.Node) {
	// yaml.v3 only recovers its own panics; a malformed file pushed to a
	// running sidecar must never take it down.
	defer func() {
		if r := recover(); r != nil {
			d.errorf(nil, "", "invalid YAML: parser failure: %v", r)
			root = nil
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if !errors.Is(err, io.EOF) {
			d.syntaxError(err)
		}
		return nil
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case errors.Is(err, io.EOF):
	case err != nil:
		d.syntaxError(err)
		return nil
	case len(extra.Content) > 0 && !isNull(extra.Content[0]):
		d.errorf(extra.Content[0], "", "found a second YAML document (after \"---\"); the config must be a single document")
	}
	if len(doc.Content) == 0 {
		return nil
	}
	return doc.Content[0]
}

// parserProblems are the messages of yaml.v3's parser (as opposed to its
// scanner). For these, v3.0.1 reports a 0-based line, and none at all for
// the first line; scanner errors are reported 1-based.
var parserProblems = map[string]bool{
	"did not find expected <stream-start>":   true,
	"did not find expected <document start>": true,
	"did not find expected node content":     true,
	"did not find expected '-' indicator":    true,
	"did not find expected key":              true,
	"did not find expected ',' or ']'":       true,
	"did not find expected ',' or '}'":       true,
	"found undefined tag handle":             true,
	"found duplicate %YAML directive":        true,
	"found duplicate %TAG directive":         true,
	"found incompatible YAML document":       true,
}

var indentationProblems = map[string]bool{
	"did not find expected key":                              true,
	"did not find expected '-' indicator":                    true,
	"mapping values are not allowed in this context":         true,
	"block sequence entries are not allowed in this context": true,
}

func (d *decoder) syntaxError(err error) {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	line := 0
	if m := yamlLineErr.FindStringSubmatch(err.Error()); m != nil {
		line, _ = strconv.Atoi(m[1])
		msg = m[2]
	}
	switch {
	case parserProblems[msg]:
		line++
	case line == 0 && !strings.Contains(msg, "UTF") && !strings.Contains(msg, "octet") &&
		!strings.Contains(msg, "control characters") && !strings.Contains(msg, "input error"):
		line = 1 // a scanner error on the first line; reader errors have no line
	}
	if indentationProblems[msg] {
		// yaml.v3 often points at the start of the enclosing block.
		msg += " (check the indentation at and below this line)"
	}
	d.errs = append(d.errs, &FieldError{File: d.file, Line: line, Msg: "invalid YAML: " + msg})
}

func (d *decoder) root(n *yaml.Node, c *Config) {
	n = d.resolve(n)
	if n == nil || isNull(n) {
		return
	}
	if n.Kind != yaml.MappingNode {
		d.fail(n, "", "the config must be a mapping of sections (listeners:, cache:, ...), got %s", describe(n))
		return
	}
	d.structFields(n, "", reflect.ValueOf(c).Elem(), true)
}

// spend charges one node against maxNodes and reports whether to go on.
func (d *decoder) spend(n *yaml.Node) bool {
	d.nodes++
	if d.nodes == maxNodes+1 {
		d.errorf(n, "", "document too large or too deeply aliased (more than %d nodes)", maxNodes)
	}
	return d.nodes <= maxNodes
}

// resolve follows aliases to the anchored node.
func (d *decoder) resolve(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	return n
}

var (
	durationType = reflect.TypeFor[time.Duration]()
	sizeType     = reflect.TypeFor[Size]()
)

// value decodes n into v. The caller has recorded the field's position.
// A null value keeps the default.
func (d *decoder) value(n *yaml.Node, path string, v reflect.Value) {
	n = d.resolve(n)
	if n == nil || !d.spend(n) || isNull(n) {
		return
	}
	switch v.Type() {
	case durationType:
		if !d.expectScalar(n, path, "a duration such as \"5s\"") {
			return
		}
		dur, err := ParseDuration(n.Value)
		if err != nil {
			d.fail(n, path, "%v", err)
			return
		}
		v.SetInt(int64(dur))
		return
	case sizeType:
		if !d.expectScalar(n, path, "a size such as \"64MiB\"") {
			return
		}
		s, err := ParseSize(n.Value)
		if err != nil {
			d.fail(n, path, "%v", err)
			return
		}
		v.SetInt(int64(s))
		return
	}
	switch v.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			d.fail(n, path, "expected a mapping (key: value lines), got %s", describe(n))
			return
		}
		d.structFields(n, path, v, false)
	case reflect.Pointer:
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
			if df, ok := v.Interface().(defaulter); ok {
				df.setDefaults()
			}
		}
		d.value(n, path, v.Elem())
	case reflect.Slice:
		d.slice(n, path, v)
	case reflect.Map:
		d.mapping(n, path, v)
	case reflect.String:
		if d.expectScalar(n, path, "a string") {
			v.SetString(n.Value)
		}
	case reflect.Bool, reflect.Int, reflect.Int64, reflect.Float64:
		want := map[reflect.Kind]string{reflect.Bool: "true or false", reflect.Int: "an integer",
			reflect.Int64: "an integer", reflect.Float64: "a number"}[v.Kind()]
		if !d.expectScalar(n, path, want) {
			return
		}
		// yaml.v3 knows the YAML spellings (0x1F, 1_000, .inf); reuse it.
		p := reflect.New(v.Type())
		if err := n.Decode(p.Interface()); err != nil {
			d.fail(n, path, "expected %s, got %s", want, describe(n))
			return
		}
		v.Set(p.Elem())
	default:
		// Only reachable if the model gains a field of a kind not handled
		// above; TestEveryFieldDecodes catches that before a release.
		d.fail(n, path, "internal error: no decoder for %s", v.Type())
	}
}

func (d *decoder) expectScalar(n *yaml.Node, path, want string) bool {
	if n.Kind == yaml.ScalarNode {
		return true
	}
	d.fail(n, path, "expected %s, got %s", want, describe(n))
	return false
}

func (d *decoder) slice(n *yaml.Node, path string, v reflect.Value) {
	if n.Kind != yaml.SequenceNode {
		hint := ""
		if n.Kind == yaml.ScalarNode {
			hint = fmt.Sprintf(" (for a one-item list write [%s])", n.Value)
		}
		d.fail(n, path, "expected a list, got %s%s", describe(n), hint)
		return
	}
	// A list in the file replaces the default list rather than appending.
	// An empty list is stored as nil so that equal configs compare equal.
	if len(n.Content) == 0 {
		v.Set(reflect.Zero(v.Type()))
		return
	}
	s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
	for i, item := range n.Content {
		p := fmt.Sprintf("%s[%d]", path, i)
		d.pos[p] = position{item.Line, item.Column}
		el := s.Index(i)
		if df, ok := el.Addr().Interface().(defaulter); ok {
			df.setDefaults()
		}
		d.value(item, p, el)
	}
	v.Set(s)
}

func (d *decoder) mapping(n *yaml.Node, path string, v reflect.Value) {
	if n.Kind != yaml.MappingNode {
		d.fail(n, path, "expected a mapping (key: value lines), got %s", describe(n))
		return
	}
	kvs := d.pairs(n, path, 0)
	if len(kvs) == 0 { // nil, like an empty list
		v.Set(reflect.Zero(v.Type()))
		return
	}
	m := reflect.MakeMap(v.Type())
	for _, kv := range kvs {
		p := path + mapKeyPath(kv.key.Value)
		d.pos[p] = position{kv.key.Line, kv.key.Column}
		el := reflect.New(v.Type().Elem()).Elem()
		d.value(kv.val, p, el)
		m.SetMapIndex(reflect.ValueOf(kv.key.Value), el)
	}
	v.Set(m)
}

func mapKeyPath(k string) string {
	if k != "" && strings.IndexFunc(k, func(r rune) bool {
		return !(r == '-' || r == '_' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z')
	}) < 0 {
		return "." + k
	}
	return "[" + strconv.Quote(k) + "]"
}

type pair struct{ key, val *yaml.Node }

// pairs returns the entries of mapping n, resolving YAML merge keys
// ("<<: *anchor"): explicit keys win over merged ones, earlier merges over
// later. Duplicate explicit keys are errors; yaml.Node does not catch them.
func (d *decoder) pairs(n *yaml.Node, path string, depth int) []pair {
	var out, merged []pair
	seen := map[string]*yaml.Node{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge" {
			merged = append(merged, d.merge(val, path, depth)...)
			continue
		}
		if k.Kind != yaml.ScalarNode {
			d.errorf(k, path, "keys must be plain strings, got %s", describe(k))
			continue
		}
		if first, dup := seen[k.Value]; dup {
			d.errorf(k, path+mapKeyPath(k.Value), "duplicate key (first set at line %d)", first.Line)
			continue
		}
		seen[k.Value] = k
		out = append(out, pair{k, val})
	}
	for _, kv := range merged {
		if _, dup := seen[kv.key.Value]; !dup {
			seen[kv.key.Value] = kv.key
			out = append(out, kv)
		}
	}
	return out
}

func (d *decoder) merge(val *yaml.Node, path string, depth int) []pair {
	val = d.resolve(val)
	if depth > 10 {
		d.errorf(val, path, "merge keys (<<) nested too deeply")
		return nil
	}
	switch val.Kind {
	case yaml.MappingNode:
		return d.pairs(val, path, depth+1)
	case yaml.SequenceNode:
		var out []pair
		for _, m := range val.Content {
			if m = d.resolve(m); m.Kind != yaml.MappingNode {
				d.errorf(m, path, "merge key (<<) list must contain mappings, got %s", describe(m))
				continue
			}
			out = append(out, d.pairs(m, path, depth+1)...)
		}
		return out
	}
	d.errorf(val, path, "merge key (<<) needs a mapping or a list of mappings, got %s", describe(val))
	return nil
}

// structFields decodes mapping n into struct v by yaml tag.
func (d *decoder) structFields(n *yaml.Node, path string, v reflect.Value, top bool) {
	fields := fieldsOf(v.Type())
	kvs := d.pairs(n, path, 0)
	present := make(map[string]bool, len(kvs))
	for _, kv := range kvs {
		present[kv.key.Value] = true
	}
	join := func(name string) string {
		if path == "" {
			return name
		}
		return path + "." + name
	}
	for _, kv := range kvs {
		name := kv.key.Value
		p := join(name)
		idx, ok := fields[name]
		if !ok {
			switch {
			case top && strings.HasPrefix(name, "x-"):
				// Extension key: a place for anchors, ignored by zerohop.
			case slices.Contains(reservedKeys[v.Type()], name):
				d.errorf(kv.key, p, "not supported yet by this version of zerohop")
			default:
				best, hint := suggest(name, fields)
				d.errorf(kv.key, p, "unknown field%s", hint)
				if best != "" && !present[best] {
					// "rat: 5" means rate was meant: do not also say rate is missing.
					d.failed[join(best)] = true
				}
			}
			continue
		}
		d.pos[p] = position{kv.key.Line, kv.key.Column}
		d.value(kv.val, p, v.Field(idx))
	}
}

// fieldsOf maps yaml keys to field indexes of struct type t.
func fieldsOf(t reflect.Type) map[string]int {
	m := make(map[string]int, t.NumField())
	for i := range t.NumField() {
		f := t.Field(i)
		tag, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if f.IsExported() && tag != "" && tag != "-" {
			m[tag] = i
		}
	}
	return m
}

// suggest finds the closest valid key for a typo and returns it with a
// hint naming it, or "" with a hint listing the valid keys.
func suggest(name string, fields map[string]int) (string, string) {
	keys := make([]string, 0, len(fields))
	for k := range fields {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	best, bestDist := "", 3
	for _, k := range keys {
		if dist := editDistance(strings.ToLower(name), k); dist < bestDist {
			best, bestDist = k, dist
		}
	}
	if best != "" {
		return best, fmt.Sprintf(" (did you mean %q?)", best)
	}
	return "", "; valid fields are " + strings.Join(keys, ", ")
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 { // typos are short; skip quadratic work on junk
		return 1 << 30
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// describe names what a node is, for "expected X, got Y" messages.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		v := n.Value
		if len(v) > 40 {
			v = v[:40] + "..."
		}
		switch n.ShortTag() {
		case "!!null":
			return "null"
		case "!!bool":
			return "the boolean " + v
		case "!!int", "!!float":
			return "the number " + v
		}
		return fmt.Sprintf("the string %q", v)
	}
	return "an unexpected YAML node"
}
