package inject

import (
	"bytes"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	yamlv3 "gopkg.in/yaml.v3"
	"sigs.k8s.io/yaml"

	"github.com/zerohop/zerohop/config"
)

// Error is a problem with one document of the input stream. Line is where
// in the whole stream (1-based, counting every document before it) the
// problem was found, 0 when it cannot be placed.
type Error struct {
	Line int
	Doc  int    // 1-based document number
	Kind string // the document's kind and name, when they could be read
	Name string
	Err  error
}

func (e *Error) Error() string {
	var b strings.Builder
	if e.Line > 0 {
		fmt.Fprintf(&b, "line %d: ", e.Line)
	}
	fmt.Fprintf(&b, "document %d", e.Doc)
	if e.Kind != "" {
		fmt.Fprintf(&b, " (%s %s)", e.Kind, e.Name)
	}
	fmt.Fprintf(&b, ": %v", e.Err)
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// Result is what Stream produced.
type Result struct {
	// Output is the input with every workload injected.
	Output []byte
	// Warnings are problems that do not stop the injection but will stop
	// the pods: a referenced ConfigMap that is not in the input.
	Warnings []string
}

type docMeta struct {
	Kind     string `json:"kind"`
	Metadata struct {
		Name      string `json:"name"`
		Namespace string `json:"namespace"`
	} `json:"metadata"`
	Data map[string]string `json:"data"`
}

// Stream injects every workload in a multi-document YAML stream, as
// Manifests does, and also reports errors with the line of the stream
// they are on, validates the zerohop.yaml of the referenced ConfigMap when
// the stream holds it, and warns when it does not: a pod whose ConfigMap
// volume names a missing ConfigMap stays in ContainerCreating.
func Stream(in []byte, o Options) (*Result, error) {
	o.defaults()
	var out [][]byte
	res := &Result{}
	configMaps := map[string]bool{} // namespace/name in the input
	var injected []string           // namespaces of injected workloads
	starts := docStarts(in)
	for i, doc := range docSep.Split(string(in), -1) {
		if strings.TrimSpace(stripComments(doc)) == "" {
			continue
		}
		wrap := func(err error) error {
			line, err := locate([]byte(doc), err)
			if line > 0 {
				line += starts[i] - 1
			}
			e := &Error{Line: line, Doc: i + 1, Err: err}
			var m docMeta
			if yaml.Unmarshal([]byte(doc), &m) == nil {
				e.Kind, e.Name = m.Kind, m.Metadata.Name
			}
			return e
		}
		var m docMeta
		if err := yaml.Unmarshal([]byte(doc), &m); err != nil {
			return nil, fmt.Errorf("inject: %w", wrap(err))
		}
		if m.Kind == "ConfigMap" {
			configMaps[m.Metadata.Namespace+"/"+m.Metadata.Name] = true
			if m.Metadata.Name == o.ConfigMap {
				if err := checkConfigMap([]byte(doc), m); err != nil {
					return nil, fmt.Errorf("inject: %w", wrapConfig([]byte(doc), err, starts[i], i+1, m))
				}
			}
		}
		b, err := document([]byte(doc), o)
		if errors.Is(err, ErrUnsupported) {
			out = append(out, bytes.TrimSpace([]byte(doc)))
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("inject: %w", wrap(err))
		}
		injected = append(injected, m.Metadata.Namespace)
		out = append(out, bytes.TrimSpace(b))
	}
	if o.ConfigMap != "" {
		warned := map[string]bool{}
		for _, ns := range injected {
			if key := ns + "/" + o.ConfigMap; !configMaps[key] && !warned[key] {
				warned[key] = true
				where := ""
				if ns != "" {
					where = " in namespace " + ns
				}
				res.Warnings = append(res.Warnings, fmt.Sprintf(
					"ConfigMap %q%s is not in the input: the pods will not start until it exists "+
						"(create it from deploy/kubernetes/configmap.yaml, or pass --configmap \"\" to run on defaults)",
					o.ConfigMap, where))
			}
		}
	}
	res.Output = append(bytes.Join(out, []byte("\n---\n")), '\n')
	return res, nil
}

// docStarts returns, for each document docSep.Split yields, the line of
// the stream its text starts on.
func docStarts(in []byte) []int {
	starts := []int{1}
	for _, m := range docSep.FindAllIndex(in, -1) {
		starts = append(starts, bytes.Count(in[:m[0]], []byte("\n"))+1)
	}
	return starts
}

var (
	yamlLineRE    = regexp.MustCompile(`yaml: line (\d+): (.*)`)
	unknownRE     = regexp.MustCompile(`unknown field "([^"]+)"`)
	structFieldRE = regexp.MustCompile(`cannot unmarshal (\S+) into Go struct field \w+\.(\S+) of type (\S+)`)
)

// locate finds the line (within doc) that err is about and rewrites err
// without the JSON-decoding noise of sigs.k8s.io/yaml. 0 when unknown.
func locate(doc []byte, err error) (int, error) {
	msg := err.Error()
	if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
		n, _ := strconv.Atoi(m[1])
		return n, errors.New(m[2])
	}
	var root yamlv3.Node
	if yamlv3.Unmarshal(doc, &root) != nil {
		return 0, err
	}
	if m := unknownRE.FindStringSubmatch(msg); m != nil {
		if n := findKey(&root, m[1]); n != nil {
			return n.Line, fmt.Errorf("unknown field %q", m[1])
		}
		return 0, fmt.Errorf("unknown field %q", m[1])
	}
	if m := structFieldRE.FindStringSubmatch(msg); m != nil {
		e := fmt.Errorf("%s: want %s, not %s", m[2], m[3], m[1])
		if n := findPath(&root, strings.Split(m[2], ".")); n != nil {
			return n.Line, e
		}
		return 0, e
	}
	return 0, err
}

// findKey returns the value node of the first mapping key named key.
func findKey(n *yamlv3.Node, key string) *yamlv3.Node {
	if n.Kind == yamlv3.MappingNode {
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == key {
				return n.Content[i]
			}
		}
	}
	for _, c := range n.Content {
		if f := findKey(c, key); f != nil {
			return f
		}
	}
	return nil
}

// findPath follows mapping keys along path, trying every element of a
// sequence on the way (the error does not say which index failed), and
// returns the first node that matches the whole path.
func findPath(n *yamlv3.Node, path []string) *yamlv3.Node {
	switch n.Kind {
	case yamlv3.DocumentNode:
		if len(n.Content) > 0 {
			return findPath(n.Content[0], path)
		}
	case yamlv3.SequenceNode:
		for _, c := range n.Content {
			if f := findPath(c, path); f != nil {
				return f
			}
		}
	case yamlv3.MappingNode:
		if len(path) == 0 {
			return nil
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value != path[0] {
				continue
			}
			if len(path) == 1 {
				return n.Content[i+1]
			}
			return findPath(n.Content[i+1], path[1:])
		}
	default:
		if len(path) == 0 {
			return n
		}
	}
	return nil
}

// checkConfigMap validates the zerohop.yaml a ConfigMap carries: the
// sidecar would refuse to start on it.
func checkConfigMap(doc []byte, m docMeta) error {
	data, ok := m.Data[ConfigFileName]
	if !ok {
		return fmt.Errorf("ConfigMap %q has no %s", m.Metadata.Name, ConfigFileName)
	}
	if _, err := config.Parse(ConfigFileName, []byte(data)); err != nil {
		return err
	}
	return nil
}

// wrapConfig places the config package's line numbers, which count from
// the start of zerohop.yaml, in the stream: one line per problem.
func wrapConfig(doc []byte, err error, start, docN int, m docMeta) error {
	e := &Error{Doc: docN, Kind: m.Kind, Name: m.Metadata.Name, Err: err}
	var list config.ErrorList
	var root yamlv3.Node
	if !errors.As(err, &list) || yamlv3.Unmarshal(doc, &root) != nil {
		return e
	}
	n := findPath(&root, []string{"data", ConfigFileName})
	if n == nil {
		return e
	}
	first := n.Line // a quoted or plain scalar starts on the key's line
	if n.Style&(yamlv3.LiteralStyle|yamlv3.FoldedStyle) != 0 {
		first++ // a block scalar's text starts below its indicator
	}
	lines := make([]string, len(list))
	for i, fe := range list {
		var b strings.Builder
		if fe.Line > 0 {
			abs := start + first + fe.Line - 2
			if e.Line == 0 {
				e.Line = abs
			}
			fmt.Fprintf(&b, "line %d: ", abs)
		}
		if fe.Field != "" {
			b.WriteString(fe.Field + ": ")
		}
		b.WriteString(fe.Msg)
		lines[i] = b.String()
	}
	e.Err = fmt.Errorf("%s is invalid, the sidecar would not start:\n  %s", ConfigFileName, strings.Join(lines, "\n  "))
	return e
}
