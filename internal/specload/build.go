package specload

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/conflictcheck/conflictcheck/internal/xconflict"
	"github.com/getkin/kin-openapi/openapi2"
	"github.com/getkin/kin-openapi/openapi2conv"
	"github.com/getkin/kin-openapi/openapi3"
	"go.yaml.in/yaml/v4"
)

// versionRE matches the OpenAPI versions kin-openapi reads: 3.0.x, 3.1.x and 3.2.x.
var versionRE = regexp.MustCompile(`^3\.[012](\.\d+)?(-[0-9A-Za-z.-]+)?$`)

// load turns a source's bytes into a Document.
func load(ctx context.Context, src *source, opts Options) (*Document, error) {
	root, isJSON, err := parseDocument(src.data)
	if err != nil {
		return nil, err
	}
	if root.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("not an OpenAPI document: the top level is a %s, not a mapping", kindName(root.Kind))
	}
	// What is no OpenAPI document is refused before any overlay is read.
	ver, swagger2, err := version(root)
	if err != nil {
		return nil, err
	}
	if len(opts.Overlays) > 0 {
		var overlays []*overlay
		for _, name := range opts.Overlays {
			o, err := readOverlay(ctx, name, opts)
			if err != nil {
				return nil, fmt.Errorf("overlay %s: %w", name, err)
			}
			overlays = append(overlays, o)
		}
		if root, err = applyOverlays(root, overlays); err != nil {
			return nil, err
		}
		if ver, swagger2, err = version(root); err != nil {
			return nil, err
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	external, rewritten, err := checkRefs(root, src, opts)
	if err != nil {
		return nil, err
	}

	// The bytes kin-openapi may read the document from again (see refReader), and the Swagger 2.0
	// decoder reads, which takes JSON only: the bytes as read, unless the tree was changed or is
	// Swagger 2.0 in YAML, then the tree written as JSON. The tree is not kept for that: it is
	// most of the memory a load takes, and is dropped once decoded.
	rootData := src.data
	if len(opts.Overlays) > 0 || rewritten || swagger2 && !isJSON {
		if rootData, err = appendJSON(nil, root); err != nil {
			return nil, err
		}
	}
	reader := &refReader{ctx: ctx, src: src, opts: opts, root: rootData}
	loader := openapi3.NewLoader()
	loader.Context = ctx
	loader.IsExternalRefsAllowed = external
	loader.ReadFromURIFunc = reader.read
	order := documentOrder(root)

	var doc *openapi3.T
	if swagger2 {
		if doc, err = fromSwagger2(rootData, loader, src.base); err != nil {
			return nil, err
		}
	} else {
		if doc, err = decode(root); err != nil {
			return nil, err
		}
		if err := guard("resolve references", func() error { return loader.ResolveRefsIn(doc, src.base) }); err != nil {
			return nil, err
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	out := &Document{Source: src.name, Version: ver, T: doc, raw: src.data}
	if out.Operations, out.byID, err = operations(order, doc); err != nil {
		return nil, err
	}
	if err := checkResolved(out.Operations); err != nil {
		return nil, err
	}
	if out.Conflicts, err = conflicts(out); err != nil {
		return nil, err
	}
	return out, nil
}

// checkResolved refuses an operation whose parameters, request body, responses or their
// top-level schemas kin-openapi left without a value, as it does for a cycle of references
// (A → B → A), so the callers of Load never meet a nil where a value is due.
func checkResolved(ops []Operation) error {
	unresolved := func(o Operation, what, ref string) error {
		return fmt.Errorf("%s: %s $ref %q resolves to nothing (a cycle of references?)", o.ID, what, ref)
	}
	content := func(o Operation, what string, c openapi3.Content) error {
		for _, ct := range slices.Sorted(maps.Keys(c)) {
			mt := c[ct]
			if mt == nil {
				return fmt.Errorf("%s: %s %s is empty", o.ID, what, ct)
			}
			if mt.Schema != nil && mt.Schema.Value == nil {
				return unresolved(o, what+" "+ct+" schema", mt.Schema.Ref)
			}
		}
		return nil
	}
	for _, o := range ops {
		for _, p := range slices.Concat(o.Item.Parameters, o.Op.Parameters) {
			if p == nil || p.Value == nil {
				return unresolved(o, "parameter", refOf(p))
			}
			if s := p.Value.Schema; s != nil && s.Value == nil {
				return unresolved(o, "parameter "+p.Value.Name+" schema", s.Ref)
			}
		}
		if rb := o.Op.RequestBody; rb != nil {
			if rb.Value == nil {
				return unresolved(o, "requestBody", rb.Ref)
			}
			if err := content(o, "request", rb.Value.Content); err != nil {
				return err
			}
		}
		if o.Op.Responses == nil {
			continue
		}
		responses := o.Op.Responses.Map()
		for _, code := range slices.Sorted(maps.Keys(responses)) {
			r := responses[code]
			if r == nil || r.Value == nil {
				return unresolved(o, "response "+code, refOf(r))
			}
			if err := content(o, "response "+code, r.Value.Content); err != nil {
				return err
			}
			for name, h := range r.Value.Headers {
				if h == nil || h.Value == nil {
					return unresolved(o, "response "+code+" header "+name, refOf(h))
				}
			}
		}
	}
	return nil
}

// refOf is the $ref of a kin-openapi reference, which may be nil.
func refOf[E any, R interface {
	*E
	RefString() string
}](r R) string {
	if r == nil {
		return ""
	}
	return r.RefString()
}

// decode decodes an OpenAPI 3 document with kin-openapi.
func decode(root *yaml.Node) (*openapi3.T, error) {
	rest := &yaml.Node{Kind: yaml.MappingNode, Tag: tagMap, Line: root.Line, Column: root.Column}
	var pathsNode, componentsNode *yaml.Node
	lines := map[string]int{}
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		if line, dup := lines[k.Value]; dup {
			return nil, fmt.Errorf("line %d: mapping key %q already defined at line %d", k.Line, k.Value, line)
		}
		lines[k.Value] = k.Line
		switch {
		case k.Value == "paths" && v.Kind == yaml.MappingNode:
			pathsNode = v
		case k.Value == "components" && v.Kind == yaml.MappingNode:
			componentsNode = v
		default:
			rest.Content = append(rest.Content, k, v)
		}
	}
	// One part at a time, so that each part's nodes can be collected once decoded: the nodes of
	// a document take about twice the memory of its decoded form. The caller must not use root
	// after the call for the same reason.
	doc := &openapi3.T{}
	if err := guard("decode", func() error { return rest.Decode(doc) }); err != nil {
		return nil, err
	}
	if componentsNode != nil {
		components := &openapi3.Components{}
		if err := guard("decode components", func() error { return componentsNode.Decode(components) }); err != nil {
			return nil, err
		}
		doc.Components = components
	}
	if pathsNode != nil {
		paths := &openapi3.Paths{}
		if err := guard("decode paths", func() error { return pathsNode.Decode(paths) }); err != nil {
			return nil, err
		}
		doc.Paths = paths
	}
	return doc, nil
}

// version reads the document's declared version, refusing what kin-openapi cannot read.
func version(root *yaml.Node) (v string, swagger2 bool, err error) {
	if sv := mapValue(root, "swaggerVersion"); sv != nil {
		return "", false, fmt.Errorf("swaggerVersion %s: Swagger 1.x is not supported, convert it to OpenAPI 3 or Swagger 2.0 first", short(sv.Value))
	}
	if o := mapValue(root, "openapi"); o != nil {
		if o.Kind != yaml.ScalarNode || !versionRE.MatchString(o.Value) {
			return "", false, fmt.Errorf("unsupported OpenAPI version %s (supported: 3.0.x, 3.1.x, 3.2.x and Swagger 2.0)", short(nodeText(o)))
		}
		return o.Value, false, nil
	}
	if s := mapValue(root, "swagger"); s != nil {
		if s.Kind != yaml.ScalarNode || s.Value != "2.0" {
			return "", false, fmt.Errorf("unsupported Swagger version %s (supported: 2.0, and OpenAPI 3.0.x to 3.2.x)", short(nodeText(s)))
		}
		return "2.0", true, nil
	}
	return "", false, errors.New(`not an OpenAPI document: it has no "openapi" or "swagger" version field`)
}

func nodeText(n *yaml.Node) string {
	if n.Kind == yaml.ScalarNode {
		return fmt.Sprintf("%q", n.Value)
	}
	return "a " + kindName(n.Kind)
}

// short shortens a value quoted in a message.
func short(s string) string {
	return truncate(s, 40)
}

// fromSwagger2 decodes a Swagger 2.0 document and converts it to OpenAPI 3.
func fromSwagger2(data []byte, loader *openapi3.Loader, base *url.URL) (*openapi3.T, error) {
	var doc2 openapi2.T
	if err := guard("decode", func() error { return json.Unmarshal(data, &doc2) }); err != nil {
		return nil, err
	}
	// openapi2conv reads only an operation's own produces: give each the document's default.
	if len(doc2.Produces) > 0 {
		for _, item := range doc2.Paths {
			for _, op := range item.Operations() {
				if op != nil && len(op.Produces) == 0 {
					op.Produces = doc2.Produces
				}
			}
		}
	}
	var doc *openapi3.T
	err := guard("convert Swagger 2.0", func() (err error) {
		doc, err = openapi2conv.ToV3WithLoader(&doc2, loader, base)
		return err
	})
	return doc, err
}

// guard runs a kin-openapi step, turning a panic on a hostile document into an error.
func guard(step string, f func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%s: kin-openapi failed on this document: %v", step, r)
		}
	}()
	if err := f(); err != nil {
		return fmt.Errorf("%s: %w", step, err)
	}
	return nil
}

// methodOrder is the order of the methods of a path item whose document order is unknown.
var methodOrder = []string{"get", "put", "post", "delete", "options", "head", "patch", "trace", "query"}

// pathOrder is the order of a document's paths, and of the methods of each, as written.
type pathOrder struct {
	paths   []string
	methods map[string][]string // upper case
}

// documentOrder reads the order of the paths and their methods in root.
func documentOrder(root *yaml.Node) pathOrder {
	o := pathOrder{methods: map[string][]string{}}
	pn := mapValue(root, "paths")
	if pn == nil || pn.Kind != yaml.MappingNode {
		return o
	}
	for i := 0; i+1 < len(pn.Content); i += 2 {
		p, item := pn.Content[i].Value, pn.Content[i+1]
		if _, dup := o.methods[p]; dup {
			continue
		}
		o.paths = append(o.paths, p)
		var ms []string
		if item.Kind == yaml.MappingNode {
			for j := 0; j+1 < len(item.Content); j += 2 {
				ms = append(ms, strings.ToUpper(item.Content[j].Value))
			}
		}
		o.methods[p] = ms
	}
	return o
}

// operations lists doc's operations, paths and methods in document order (the rest, from
// referenced path items, in a fixed order) with their index by ID, and refuses a repeated
// operationId.
func operations(order pathOrder, doc *openapi3.T) ([]Operation, map[string]int, error) {
	if doc.Paths == nil {
		return nil, nil, nil
	}
	items := doc.Paths.Map()
	var paths []string
	for _, p := range order.paths {
		if items[p] != nil {
			paths = append(paths, p)
		}
	}
	var rest []string
	for p := range items {
		if _, ok := order.methods[p]; !ok {
			rest = append(rest, p)
		}
	}
	sort.Strings(rest)
	paths = append(paths, rest...)

	var out []Operation
	byID := map[string]int{}
	for _, p := range paths {
		item := items[p]
		ops := item.Operations()
		var methods []string
		for _, m := range order.methods[p] {
			if ops[m] != nil && !slices.Contains(methods, m) {
				methods = append(methods, m)
			}
		}
		var restM []string
		for m := range ops {
			if !slices.Contains(methods, m) {
				restM = append(restM, m)
			}
		}
		slices.SortFunc(restM, func(a, b string) int {
			return methodRank(a) - methodRank(b)
		})
		methods = append(methods, restM...)
		for _, m := range methods {
			op := ops[m]
			o := Operation{ID: op.OperationID, Method: m, Path: p, Op: op, Item: item}
			if o.ID == "" {
				o.ID = m + " " + p
			}
			if i, dup := byID[o.ID]; dup {
				return nil, nil, fmt.Errorf("duplicate operationId %q: %s %s and %s %s", o.ID, out[i].Method, out[i].Path, m, p)
			}
			byID[o.ID] = len(out)
			out = append(out, o)
		}
	}
	return out, byID, nil
}

func methodRank(m string) int {
	if i := slices.Index(methodOrder, strings.ToLower(m)); i >= 0 {
		return i
	}
	return len(methodOrder)
}

// conflicts validates each operation's x-conflict and the operationIds it names.
func conflicts(doc *Document) (map[string][]xconflict.Conflict, error) {
	out := map[string][]xconflict.Conflict{}
	for _, o := range doc.Operations {
		raw, ok := o.Op.Extensions["x-conflict"]
		if !ok {
			continue
		}
		cs, err := xconflict.Parse(o.ID, raw)
		if err != nil {
			return nil, err
		}
		for i, c := range cs {
			field := "x-conflict"
			if _, list := raw.([]any); list {
				field = fmt.Sprintf("x-conflict[%d]", i)
			}
			for _, r := range c.OperationRefs() {
				if _, ok := doc.byID[r.OperationID]; !ok {
					return nil, &xconflict.Error{Operation: o.ID, Field: field + "." + r.Field,
						Message: fmt.Sprintf("unknown operationId %q", r.OperationID)}
				}
			}
		}
		out[o.ID] = cs
	}
	return out, nil
}
