package specload

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"go.yaml.in/yaml/v4"
)

// maxAliasNodes bounds how many nodes YAML aliases may add to a document once expanded (beyond
// the document's own size), which stops an alias bomb ("billion laughs") before anything
// expands it.
const maxAliasNodes = 500_000

// parseDocument parses JSON or YAML text into a normalized node tree: no aliases, no merge
// keys, string keys, and the scalar tags kin-openapi's decoder expects (see normalize). isJSON
// reports that data is JSON as it stands (without a byte order mark), so that kin-openapi and
// encoding/json may be handed data itself rather than the tree written back.
func parseDocument(data []byte) (root *yaml.Node, isJSON bool, err error) {
	bom := []byte("\xef\xbb\xbf")
	plain := !bytes.HasPrefix(data, bom)
	data = bytes.TrimPrefix(data, bom)
	trimmed := bytes.TrimLeft(data, " \t\r\n")
	if len(trimmed) == 0 {
		return nil, false, errors.New("empty document")
	}
	if i := bytes.IndexByte(data, 0); i >= 0 {
		return nil, false, fmt.Errorf("binary data (a NUL byte at offset %d), not a JSON or YAML document", i)
	}
	if !utf8.Valid(data) {
		return nil, false, errors.New("not UTF-8 text, so not a JSON or YAML document")
	}
	if c := trimmed[0]; c == '{' || c == '[' {
		n, err := parseJSON(data)
		if err == nil {
			return n, plain, nil
		}
		// YAML's flow style also starts so: {openapi: 3.1.0, …}.
		var je *jsonError
		if errors.As(err, &je) && !je.final {
			if y, yerr := parseYAML(data); yerr == nil {
				return y, false, nil
			}
		}
		return nil, false, err
	}
	root, err = parseYAML(data)
	return root, false, err
}

// parseYAML parses the first YAML document of data.
func parseYAML(data []byte) (*yaml.Node, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("invalid YAML: %w", err)
	}
	root := &doc
	if root.Kind == yaml.DocumentNode {
		if len(root.Content) == 0 {
			return nil, errors.New("empty document")
		}
		root = root.Content[0]
	}
	if err := normalize(root); err != nil {
		return nil, fmt.Errorf("invalid YAML: %w", err)
	}
	return root, nil
}

// normalize rewrites a parsed YAML tree into the plain data model JSON has, in place:
//   - aliases are replaced by the node they name (shared, not copied), after checking that no
//     alias contains itself, that expanding them adds at most maxAliasNodes nodes, and that the
//     expanded tree is at most maxDepth deep: kin-openapi decodes each typed value with a fresh
//     decoder, so go-yaml's own alias limits do not protect it;
//   - merge keys (<<) are replaced by the members they merge;
//   - every mapping key is a string (200: is "200"); a null or non-scalar key is an error;
//   - a scalar with an application tag (!md text) or a timestamp is a string, as kin-openapi
//     reads them; .inf and .nan are errors, JSON having no such numbers.
func normalize(root *yaml.Node) error {
	var shared bool
	var walk func(n *yaml.Node) error
	walk = func(n *yaml.Node) error {
		switch n.Kind {
		case yaml.AliasNode:
			shared = true
			return nil
		case yaml.ScalarNode:
			return fixScalar(n)
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				k := n.Content[i]
				if isMergeKey(k) {
					shared = true
				} else if err := fixKey(k); err != nil {
					return err
				}
				if err := walk(n.Content[i+1]); err != nil {
					return err
				}
			}
		case yaml.SequenceNode:
			for _, c := range n.Content {
				if err := walk(c); err != nil {
					return err
				}
			}
		}
		return nil
	}
	if err := walk(root); err != nil {
		return err
	}
	if !shared {
		return nil
	}
	return expand(root)
}

func fixScalar(n *yaml.Node) error {
	switch {
	case strings.HasPrefix(n.Tag, "!") && !strings.HasPrefix(n.Tag, "!!"), n.Tag == "!!timestamp":
		n.Tag = tagStr
	case n.Tag == tagFloat:
		switch strings.ToLower(strings.TrimLeft(n.Value, "+-")) {
		case ".inf", ".nan":
			return fmt.Errorf("line %d: %s is not a JSON number", n.Line, n.Value)
		}
	}
	return nil
}

func fixKey(k *yaml.Node) error {
	switch {
	case k.Kind == yaml.AliasNode:
		return nil // expand copies it
	case k.Kind != yaml.ScalarNode:
		return fmt.Errorf("line %d: a mapping key must be a string, not a %s", k.Line, kindName(k.Kind))
	case k.Tag == tagNull:
		return fmt.Errorf("line %d: a mapping key is null", k.Line)
	}
	k.Tag = tagStr
	return nil
}

func isMergeKey(k *yaml.Node) bool {
	return k.Kind == yaml.ScalarNode && (k.Tag == tagMerge || k.Value == "<<" && k.Style == 0 && k.Tag == "")
}

func kindName(k yaml.Kind) string {
	switch k {
	case yaml.MappingNode:
		return "mapping"
	case yaml.SequenceNode:
		return "list"
	case yaml.ScalarNode:
		return "scalar"
	case yaml.AliasNode:
		return "alias"
	}
	return "document"
}

// expand replaces aliases and merge keys (see normalize).
func expand(root *yaml.Node) error {
	type info struct {
		state       uint8 // 1 on the current path, 2 done
		size, depth int
	}
	memo := map[*yaml.Node]*info{}
	own := 0 // nodes of the document as written
	tooDeep := func(n *yaml.Node) error {
		return fmt.Errorf("line %d: exceeded max depth of %d once aliases are expanded", n.Line, maxDepth)
	}
	var visit func(n *yaml.Node, depth int) (*info, error)
	visit = func(n *yaml.Node, depth int) (*info, error) {
		if in := memo[n]; in != nil {
			if in.state == 1 {
				return nil, fmt.Errorf("line %d: anchor %q contains an alias to itself", n.Line, n.Anchor)
			}
			if depth+in.depth-1 > maxDepth {
				return nil, tooDeep(n)
			}
			return in, nil
		}
		if depth > maxDepth {
			return nil, tooDeep(n)
		}
		in := &info{state: 1, size: 1, depth: 1}
		memo[n] = in
		own++
		for i, c := range n.Content {
			if c.Kind == yaml.AliasNode {
				if c.Alias == nil {
					return nil, fmt.Errorf("line %d: unknown anchor %q", c.Line, c.Value)
				}
				target := c.Alias
				if n.Kind == yaml.MappingNode && i%2 == 0 && target.Kind == yaml.ScalarNode {
					// A key written as an alias: a copy, so the anchor's own uses keep their tag.
					k := *target
					k.Anchor, k.Line, k.Column = "", c.Line, c.Column
					if err := fixKey(&k); err != nil {
						return nil, err
					}
					target = &k
				}
				n.Content[i] = target
				c = target
			}
			ci, err := visit(c, depth+1)
			if err != nil {
				return nil, err
			}
			in.size = min(in.size+ci.size, math.MaxInt32)
			in.depth = max(in.depth, ci.depth+1)
		}
		if in.depth > maxDepth {
			return nil, tooDeep(n)
		}
		if in.size > own+maxAliasNodes {
			return nil, fmt.Errorf("line %d: aliases expand to more than %d nodes (an alias bomb?)", n.Line, maxAliasNodes)
		}
		if n.Kind == yaml.MappingNode {
			if err := mergeKeys(n); err != nil {
				return nil, err
			}
		}
		in.state = 2
		return in, nil
	}
	_, err := visit(root, 1)
	return err
}

// mergeKeys replaces n's merge keys by the members they bring: a member written in n wins, then
// the first merged mapping that has it.
func mergeKeys(n *yaml.Node) error {
	hasMerge := false
	for i := 0; i < len(n.Content); i += 2 {
		if isMergeKey(n.Content[i]) {
			hasMerge = true
			break
		}
	}
	if !hasMerge {
		return nil
	}
	var out, sources []*yaml.Node
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if !isMergeKey(k) {
			out = append(out, k, v)
			seen[k.Value] = true
			continue
		}
		switch v.Kind {
		case yaml.MappingNode:
			sources = append(sources, v)
		case yaml.SequenceNode:
			for _, s := range v.Content {
				if s.Kind != yaml.MappingNode {
					return fmt.Errorf("line %d: a merge key (<<) takes mappings only", s.Line)
				}
				sources = append(sources, s)
			}
		default:
			return fmt.Errorf("line %d: a merge key (<<) takes a mapping or a list of mappings", v.Line)
		}
	}
	for _, s := range sources {
		for i := 0; i+1 < len(s.Content); i += 2 {
			if k := s.Content[i]; !seen[k.Value] {
				out = append(out, k, s.Content[i+1])
				seen[k.Value] = true
			}
		}
	}
	n.Content = out
	return nil
}

// mapValue returns the value of key in mapping n, or nil.
func mapValue(n *yaml.Node, key string) *yaml.Node {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

func strNode(s string) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: tagStr, Value: s}
}

// child returns the member tok of mapping n or the element tok of sequence n (one JSON
// pointer token, unescaped), or nil.
func child(n *yaml.Node, tok string) *yaml.Node {
	switch n.Kind {
	case yaml.MappingNode:
		return mapValue(n, tok)
	case yaml.SequenceNode:
		i, err := strconv.Atoi(tok)
		if err != nil || i < 0 || i >= len(n.Content) || tok != strconv.Itoa(i) {
			return nil
		}
		return n.Content[i]
	}
	return nil
}

// order records the member order of the mappings toAny converted, so fromAny can write them
// back in it.
type order map[uintptr][]string

// toAny converts a normalized node tree to the values encoding/json produces, numbers as
// json.Number (which theory/jsonpath reads), remembering member order in ord when not nil.
func toAny(n *yaml.Node, ord order) (any, error) {
	switch n.Kind {
	case yaml.MappingNode:
		m := make(map[string]any, len(n.Content)/2)
		var keys []string
		if ord != nil {
			keys = make([]string, 0, len(n.Content)/2)
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			v, err := toAny(n.Content[i+1], ord)
			if err != nil {
				return nil, err
			}
			k := n.Content[i].Value
			if _, dup := m[k]; dup {
				return nil, fmt.Errorf("line %d: mapping key %q is repeated", n.Content[i].Line, k)
			}
			m[k] = v
			if ord != nil {
				keys = append(keys, k)
			}
		}
		if ord != nil {
			ord[reflect.ValueOf(m).Pointer()] = keys
		}
		return m, nil
	case yaml.SequenceNode:
		s := make([]any, len(n.Content))
		for i, c := range n.Content {
			v, err := toAny(c, ord)
			if err != nil {
				return nil, err
			}
			s[i] = v
		}
		return s, nil
	case yaml.ScalarNode:
		return scalarValue(n)
	}
	return nil, fmt.Errorf("line %d: unexpected %s", n.Line, kindName(n.Kind))
}

// scalarValue is the JSON value of a normalized scalar.
func scalarValue(n *yaml.Node) (any, error) {
	switch n.ShortTag() {
	case tagStr:
		return n.Value, nil
	case tagNull:
		return nil, nil
	case tagBool:
		var b bool
		if err := n.Decode(&b); err != nil {
			return nil, fmt.Errorf("line %d: %w", n.Line, err)
		}
		return b, nil
	case tagInt, tagFloat:
		num, err := jsonNumber(n)
		if err != nil {
			return nil, err
		}
		return num, nil
	}
	return n.Value, nil
}

// jsonNumber spells a YAML number (0x1F, 1_000, +.5, 1e3) as JSON does.
func jsonNumber(n *yaml.Node) (json.Number, error) {
	if n.Tag == tagInt {
		var i int64
		if err := n.Decode(&i); err == nil {
			return json.Number(strconv.FormatInt(i, 10)), nil
		}
		var u uint64
		if err := n.Decode(&u); err == nil {
			return json.Number(strconv.FormatUint(u, 10)), nil
		}
	}
	var f float64
	if err := n.Decode(&f); err != nil {
		return "", fmt.Errorf("line %d: %w", n.Line, err)
	}
	if math.IsInf(f, 0) || math.IsNaN(f) {
		return "", fmt.Errorf("line %d: %s is not a JSON number", n.Line, n.Value)
	}
	return json.Number(strconv.FormatFloat(f, 'g', -1, 64)), nil
}

// fromAny converts a value of the kind toAny returns back to nodes; members of a mapping toAny
// made keep their order, new ones follow in sorted order.
func fromAny(v any, ord order) (*yaml.Node, error) {
	switch v := v.(type) {
	case map[string]any:
		n := &yaml.Node{Kind: yaml.MappingNode, Tag: tagMap, Content: make([]*yaml.Node, 0, 2*len(v))}
		// The names toAny recorded are distinct; an overlay may have removed some.
		keys := make([]string, 0, len(v))
		for _, k := range ord[reflect.ValueOf(v).Pointer()] {
			if _, ok := v[k]; ok {
				keys = append(keys, k)
			}
		}
		if len(keys) < len(v) {
			kept := make(map[string]bool, len(keys))
			for _, k := range keys {
				kept[k] = true
			}
			var added []string
			for k := range v {
				if !kept[k] {
					added = append(added, k)
				}
			}
			slices.Sort(added)
			keys = append(keys, added...)
		}
		for _, k := range keys {
			c, err := fromAny(v[k], ord)
			if err != nil {
				return nil, err
			}
			n.Content = append(n.Content, strNode(k), c)
		}
		return n, nil
	case []any:
		n := &yaml.Node{Kind: yaml.SequenceNode, Tag: tagSeq, Content: make([]*yaml.Node, 0, len(v))}
		for _, e := range v {
			c, err := fromAny(e, ord)
			if err != nil {
				return nil, err
			}
			n.Content = append(n.Content, c)
		}
		return n, nil
	case string:
		return strNode(v), nil
	case nil:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: tagNull, Value: "null"}, nil
	case bool:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: tagBool, Value: strconv.FormatBool(v)}, nil
	case json.Number:
		tag := tagFloat
		if _, err := v.Int64(); err == nil {
			tag = tagInt
		}
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: tag, Value: v.String()}, nil
	}
	return nil, fmt.Errorf("unexpected %T in a document", v)
}

// appendJSON writes a normalized node tree as JSON.
func appendJSON(b []byte, n *yaml.Node) ([]byte, error) {
	switch n.Kind {
	case yaml.MappingNode:
		b = append(b, '{')
		for i := 0; i+1 < len(n.Content); i += 2 {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, n.Content[i].Value)
			b = append(b, ':')
			var err error
			if b, err = appendJSON(b, n.Content[i+1]); err != nil {
				return nil, err
			}
		}
		return append(b, '}'), nil
	case yaml.SequenceNode:
		b = append(b, '[')
		for i, c := range n.Content {
			if i > 0 {
				b = append(b, ',')
			}
			var err error
			if b, err = appendJSON(b, c); err != nil {
				return nil, err
			}
		}
		return append(b, ']'), nil
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case tagStr:
			return appendJSONString(b, n.Value), nil
		case tagNull:
			return append(b, "null"...), nil
		case tagInt, tagFloat:
			if isJSONNumber(n.Value) {
				return append(b, n.Value...), nil
			}
			num, err := jsonNumber(n)
			if err != nil {
				return nil, err
			}
			return append(b, num...), nil
		case tagBool:
			v, err := scalarValue(n)
			if err != nil {
				return nil, err
			}
			return strconv.AppendBool(b, v.(bool)), nil
		}
		return appendJSONString(b, n.Value), nil
	}
	return nil, fmt.Errorf("line %d: unexpected %s", n.Line, kindName(n.Kind))
}

// isJSONNumber reports whether s is spelled as a JSON number.
func isJSONNumber(s string) bool {
	end, _, ok := scanNumber(s, 0)
	return ok && end == len(s)
}

func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		b = append(b, s[start:i]...)
		switch c {
		case '"', '\\':
			b = append(b, '\\', c)
		case '\n':
			b = append(b, '\\', 'n')
		case '\r':
			b = append(b, '\\', 'r')
		case '\t':
			b = append(b, '\\', 't')
		default:
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		}
		start = i + 1
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
