package specload

import (
	"bytes"
	"net/url"
	"slices"
	"strings"

	"go.yaml.in/yaml/v4"

	"github.com/conflictcheck/conflictcheck/internal/runtimeexpr"
)

// OperationLines maps each operation of an OpenAPI document to the 1-based line of its key in
// the path item (the `post:` line), so that reports can point into the spec file. Every
// operation is listed twice, by its operationId when it has one and by "METHOD /path" (the
// form Operation.ID takes without an operationId). src is the document's raw text, JSON or YAML
// (JSON is YAML, so one parser reads both; JSON that YAML cannot read, such as a surrogate pair
// escape, is read by the loader's JSON parser, which gives the line of the operation's `{`).
// Path items given as a local $ref are followed. A document that does not parse, or has no
// paths, gives an empty map: line numbers are a convenience, never a reason to fail.
func OperationLines(src []byte) map[string]int {
	src = bytes.TrimPrefix(src, []byte("\xef\xbb\xbf"))
	lines := map[string]int{}
	root, keyLines := linesRoot(src)
	if root == nil {
		return lines
	}
	l := opLiner{root: root, keyLines: keyLines, out: lines}
	paths := l.get(root, "paths")
	if paths == nil {
		return lines
	}
	for i := 0; i+1 < len(paths.Content); i += 2 {
		k := paths.Content[i]
		if k.Kind != yaml.ScalarNode || !strings.HasPrefix(k.Value, "/") {
			continue
		}
		l.pathItem(k.Value, paths.Content[i+1], 0)
	}
	return lines
}

// linesRoot parses src into a node tree and says whether its mapping keys carry their own
// lines: they do from the YAML parser, not from parseJSON, which shares one key node per name.
func linesRoot(src []byte) (root *yaml.Node, keyLines bool) {
	var doc yaml.Node
	if err := yaml.Unmarshal(src, &doc); err == nil {
		if doc.Kind == yaml.DocumentNode && len(doc.Content) > 0 {
			return doc.Content[0], true
		}
		return nil, false
	}
	if t := bytes.TrimLeft(src, " \t\r\n"); len(t) > 0 && t[0] == '{' {
		if n, err := parseJSON(src); err == nil {
			return n, false
		}
	}
	return nil, false
}

// maxRefHops bounds how many local $refs and merge keys one path item may follow, which stops
// a cycle.
const maxRefHops = 16

// maxLineVisits bounds how many path item mappings OperationLines reads in all, which stops
// aliases that fan out (a document the loader refuses anyway) from taking exponential time.
const maxLineVisits = 1_000_000

// opLiner walks the path items of one document, recording operation lines in out.
type opLiner struct {
	root     *yaml.Node
	keyLines bool
	out      map[string]int
	visits   int
}

// pathItem records the operations of the path item n at path p, following a $ref and merge
// keys; operations written in n itself win over those it refers to.
func (l *opLiner) pathItem(p string, n *yaml.Node, hops int) {
	n = deref(n)
	if n == nil || n.Kind != yaml.MappingNode || hops > maxRefHops || l.visits >= maxLineVisits {
		return
	}
	l.visits++
	var merged []*yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			continue
		}
		switch {
		case k.Value == "<<" && k.Tag == tagMerge:
			merged = append(merged, v)
		case k.Value == "$ref":
			if t := l.resolve(deref(v)); t != nil {
				merged = append(merged, t)
			}
		case isMethod(k.Value):
			line := k.Line
			if !l.keyLines {
				line = deref(v).Line
			}
			l.record(p, strings.ToUpper(k.Value), deref(v), line)
		}
	}
	for _, m := range merged {
		m = deref(m)
		if m != nil && m.Kind == yaml.SequenceNode {
			for _, c := range m.Content {
				l.pathItem(p, c, hops+1)
			}
			continue
		}
		l.pathItem(p, m, hops+1)
	}
}

// record notes the operation op (METHOD path) at line, unless an earlier one took its keys.
func (l *opLiner) record(p, method string, op *yaml.Node, line int) {
	if op == nil || op.Kind != yaml.MappingNode || line <= 0 {
		return
	}
	add := func(key string) {
		if _, ok := l.out[key]; !ok {
			l.out[key] = line
		}
	}
	add(method + " " + p)
	if id := l.get(op, "operationId"); id != nil && id.Kind == yaml.ScalarNode && id.Value != "" {
		add(id.Value)
	}
}

// get is the value of key in the mapping n, or nil.
func (l *opLiner) get(n *yaml.Node, key string) *yaml.Node {
	n = deref(n)
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if k := n.Content[i]; k.Kind == yaml.ScalarNode && k.Value == key {
			return deref(n.Content[i+1])
		}
	}
	return nil
}

// resolve is the node a local reference ("#/components/pathItems/x") names, or nil for any
// other reference.
func (l *opLiner) resolve(ref *yaml.Node) *yaml.Node {
	if ref == nil || ref.Kind != yaml.ScalarNode || !strings.HasPrefix(ref.Value, "#") {
		return nil
	}
	frag, err := url.PathUnescape(ref.Value[1:])
	if err != nil || (frag != "" && !strings.HasPrefix(frag, "/")) {
		return nil
	}
	n := l.root
	if frag == "" {
		return n
	}
	for tok := range strings.SplitSeq(frag[1:], "/") {
		if n = l.get(n, runtimeexpr.UnescapeToken(tok)); n == nil {
			return nil
		}
	}
	return n
}

// deref is n, or the node it is an alias of.
func deref(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i < maxRefHops; i++ {
		n = n.Alias
	}
	if n != nil && n.Kind == yaml.AliasNode {
		return nil
	}
	return n
}

// isMethod reports whether key names an operation in a path item.
func isMethod(key string) bool {
	return slices.Contains(methodOrder, key) || key == "connect"
}
