package synth

import (
	"errors"
	"fmt"

	"github.com/getkin/kin-openapi/openapi3"
)

// schemaGraph is what one walk of a schema and every schema under it tells a synthesis call:
// which ones use OpenAPI 3.1 keywords (that picks the validator) and which ones recurse. It
// groups the schemas into strongly connected components (Tarjan), so that both questions are
// answered per component instead of by walking a subtree each time they are asked.
type schemaGraph struct {
	ids   map[*openapi3.Schema]int // node of each schema under the root, in visiting order
	nodes []graphNode
	comps []component
	stack []int // Tarjan's stack of nodes whose component is not complete
	// derived holds uses31 of the schemas synthesis makes (merges), which are not under the
	// root; they are built from the root's schemas and never refer to themselves.
	derived map[*openapi3.Schema]bool
	err     error
}

type graphNode struct {
	low    int  // Tarjan's lowlink
	comp   int  // component, -1 until it is complete
	modern bool // the schema, or a complete component it refers to, uses 3.1 keywords
	loop   bool // the schema is its own subschema
}

type component struct {
	modern bool // a schema in it or under it uses a 3.1 keyword
	cyclic bool // its schemas recurse
}

// analyse walks ref and every schema under it once, refusing an unresolved reference (which
// the validator cannot use).
func analyse(ref *openapi3.SchemaRef) (*schemaGraph, error) {
	if ref == nil {
		return nil, errors.New("no schema")
	}
	if ref.Value == nil {
		return nil, fmt.Errorf("unresolved schema reference %q", ref.Ref)
	}
	g := &schemaGraph{ids: map[*openapi3.Schema]int{}, derived: map[*openapi3.Schema]bool{}}
	g.visit(ref.Value)
	if g.err != nil {
		return nil, g.err
	}
	return g, nil
}

// visit is Tarjan's strongly connected components step for x; it stops at the first
// unresolved schema.
func (g *schemaGraph) visit(x *openapi3.Schema) int {
	id := len(g.nodes)
	g.ids[x] = id
	g.nodes = append(g.nodes, graphNode{low: id, comp: -1, modern: has31(x)})
	g.stack = append(g.stack, id)
	refs := subschemas(x)
	if g.err = checkResolved(x, refs); g.err != nil {
		return id
	}
	for _, ref := range refs {
		if ref == nil || ref.Value == nil {
			continue
		}
		sub, seen := g.ids[ref.Value]
		if !seen {
			if sub = g.visit(ref.Value); g.err != nil {
				return id
			}
		}
		n, s := &g.nodes[id], g.nodes[sub]
		if s.comp >= 0 {
			n.modern = n.modern || g.comps[s.comp].modern
		} else { // on the stack: in x's component
			n.low = min(n.low, s.low)
			n.loop = n.loop || sub == id
		}
	}
	if g.nodes[id].low == id {
		c := component{cyclic: g.stack[len(g.stack)-1] != id || g.nodes[id].loop}
		for {
			top := g.stack[len(g.stack)-1]
			g.stack = g.stack[:len(g.stack)-1]
			g.nodes[top].comp = len(g.comps)
			c.modern = c.modern || g.nodes[top].modern
			if top == id {
				break
			}
		}
		g.comps = append(g.comps, c)
	}
	return id
}

// checkResolved refuses a schema with an unresolved subschema; refs are its subschemas.
func checkResolved(x *openapi3.Schema, refs []*openapi3.SchemaRef) error {
	for _, m := range []openapi3.Schemas{x.Properties, x.PatternProperties, x.DependentSchemas, x.Defs} {
		for name, ref := range m {
			if ref == nil || ref.Value == nil {
				return fmt.Errorf("unresolved schema for %q", name)
			}
		}
	}
	for _, ref := range refs {
		if ref != nil && ref.Value == nil {
			return fmt.Errorf("unresolved schema reference %q", ref.Ref)
		}
	}
	for _, list := range []openapi3.SchemaRefs{x.AllOf, x.OneOf, x.AnyOf, x.PrefixItems} {
		for _, ref := range list {
			if ref == nil {
				return errors.New("null schema in a list of schemas")
			}
		}
	}
	return nil
}

// component returns the component of s, false when s is not under the root.
func (g *schemaGraph) component(s *openapi3.Schema) (int, bool) {
	id, ok := g.ids[s]
	if !ok {
		return 0, false
	}
	return g.nodes[id].comp, true
}

// uses31 reports whether s or a schema under it uses a keyword only OpenAPI 3.1 has.
func (g *schemaGraph) uses31(s *openapi3.Schema) bool {
	if c, ok := g.component(s); ok {
		return g.comps[c].modern
	}
	if m, ok := g.derived[s]; ok {
		return m
	}
	g.derived[s] = false // a guard: derived schemas do not recurse
	m := has31(s)
	for _, ref := range subschemas(s) {
		if m = m || (ref != nil && ref.Value != nil && g.uses31(ref.Value)); m {
			break
		}
	}
	g.derived[s] = m
	return m
}

// validate checks v against s as a request, as kin-openapi validates one (see validateAs).
func (g *schemaGraph) validate(s *openapi3.Schema, v any, strict bool) error {
	return validateAs(s, v, strict, g.uses31(s))
}

// has31 reports whether s itself uses a keyword only OpenAPI 3.1 has.
func has31(x *openapi3.Schema) bool {
	return x.Const != nil || x.Always != nil || len(x.PrefixItems) > 0 || x.Contains != nil ||
		len(x.PatternProperties) > 0 || len(x.DependentSchemas) > 0 || x.PropertyNames != nil ||
		x.UnevaluatedItems.Has != nil || x.UnevaluatedItems.Schema != nil ||
		x.UnevaluatedProperties.Has != nil || x.UnevaluatedProperties.Schema != nil ||
		x.If != nil || x.Then != nil || x.Else != nil || len(x.DependentRequired) > 0 ||
		x.ExclusiveMin.Value != nil || x.ExclusiveMax.Value != nil ||
		x.Type.IsMultiple() || x.Type.Includes(openapi3.TypeNull)
}

// subschemas lists the schema references directly under s, in no particular order: every
// caller only asks whether some schema below has a property.
func subschemas(s *openapi3.Schema) []*openapi3.SchemaRef {
	var refs []*openapi3.SchemaRef
	refs = append(refs, s.AllOf...)
	refs = append(refs, s.OneOf...)
	refs = append(refs, s.AnyOf...)
	refs = append(refs, s.PrefixItems...)
	refs = append(refs, s.Not, s.Items, s.AdditionalProperties.Schema, s.Contains, s.PropertyNames,
		s.If, s.Then, s.Else, s.UnevaluatedItems.Schema, s.UnevaluatedProperties.Schema, s.ContentSchema)
	for _, m := range []openapi3.Schemas{s.Properties, s.PatternProperties, s.DependentSchemas, s.Defs} {
		for _, ref := range m {
			refs = append(refs, ref)
		}
	}
	return refs
}
