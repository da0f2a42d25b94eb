package plan

import (
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/conflictcheck/conflictcheck/internal/runtimeexpr"
	"github.com/conflictcheck/conflictcheck/internal/specload"
	"github.com/conflictcheck/conflictcheck/internal/xconflict"
)

// maxLeafDepth bounds how deep otherPayload looks for a member to vary (/spec/color is one
// level down).
const maxLeafDepth = 3

// leaf is a scalar member of a body: its pointer, value and schema (nil when undeclared).
type leaf struct {
	ptr    string
	name   string
	value  any
	schema *openapi3.SchemaRef
}

// leaves lists the scalar members of body, sorted by pointer, with their schemas within s.
func leaves(body any, s *openapi3.SchemaRef, prefix string, depth int) []leaf {
	m, ok := body.(map[string]any)
	if !ok {
		return nil
	}
	props := properties(s)
	var out []leaf
	for _, k := range slices.Sorted(maps.Keys(m)) {
		ptr := prefix + "/" + runtimeexpr.EscapeToken(k)
		if _, isObj := m[k].(map[string]any); isObj {
			if depth < maxLeafDepth {
				out = append(out, leaves(m[k], props[k], ptr, depth+1)...)
			}
			continue
		}
		out = append(out, leaf{ptr: ptr, name: k, value: m[k], schema: props[k]})
	}
	return out
}

// Ranks of the members otherPayload may change, the least likely to carry meaning first.
const (
	rankText     = iota // a free string
	rankEnum            // one of several allowed values
	rankNumber          // a number, which may carry a business rule (stock, price)
	rankShaped          // a string with a pattern or a format (an email, a date)
	rankBool            // a flag
	rankIdentity        // a name the API may hold immutable or unique
	rankNever
)

// typeNames are members that identify an object, tag its type (Kubernetes apiVersion and kind,
// Stripe object, JSON-LD @type) or hold a state that changes by transitions, not by a write
// of the resource (status, state), lower-cased.
var typeNames = []string{"id", "kind", "type", "apiversion", "object", "@type", "$type", "status", "state"}

// rank says how readily otherPayload changes l: never the version (the run fills it in), a
// runtime expression, a reference to another resource (itemId), an id or type tag, object
// metadata or a const.
func rank(l leaf, version string) int {
	if version != "" && (l.ptr == version || strings.HasPrefix(l.ptr, version+"/")) {
		return rankNever
	}
	if foreignKey(l.name) != "" || slices.Contains(typeNames, strings.ToLower(l.name)) || strings.HasPrefix(l.ptr, "/metadata/") || strings.HasPrefix(l.ptr, "/status/") {
		// A reference, an id, a type tag, a state the server manages, or object metadata
		// (Kubernetes' metadata.name must match the path; its status is not written by a PUT).
		return rankNever
	}
	if l.schema != nil && l.schema.Value != nil {
		if n := len(l.schema.Value.Enum); n == 1 {
			return rankNever
		} else if n > 1 {
			return rankEnum
		}
	}
	switch v := l.value.(type) {
	case string:
		switch {
		case runtimeexpr.IsExpression(v):
			return rankNever
		case slices.Contains([]string{"name", "slug", "key", "code", "sku"}, strings.ToLower(l.name)):
			return rankIdentity
		case shaped(l):
			return rankShaped
		}
		return rankText
	case float64:
		return rankNumber
	case bool:
		return rankBool
	}
	return rankNever
}

// otherPayloads returns up to n copies of c, each with another payload valid for the request
// body's schema and distinct from c's and from each other's, and the pointer of the member
// they change: a free string, else an enum, a number, a string with a pattern or format, a
// flag, a name (the first whose values suffice for n, else the one with most); never the
// version field, which the run fills in, a reference or an id. Values stay within the member's
// schema: other values of an enum, neighbours of a number, a suffixed string, else values
// unique to each racer. Empty when no member can vary.
func (p *planner) otherPayloads(op specload.Operation, c Call, v *xconflict.Version, slot string, n int) ([]Call, string) {
	version := ""
	if v != nil {
		version = v.Field
	}
	schema := requestSchema(op.Op)
	ls := leaves(c.Body, schema, "", 0)
	slices.SortStableFunc(ls, func(a, b leaf) int { return rank(a, version) - rank(b, version) })
	var best []any
	ptr := ""
	for _, l := range ls {
		r := rank(l, version)
		if r == rankNever {
			break
		}
		if bodies := p.variants(schema, c.Body, l, r, slot, n); len(bodies) > len(best) {
			best, ptr = bodies, l.ptr
			if len(best) >= n {
				break
			}
		}
	}
	out := make([]Call, len(best))
	for i, b := range best {
		out[i] = cloneCall(c)
		out[i].Body = b
	}
	return out, ptr
}

// variants returns up to n copies of body, each with the member l changed as its rank allows,
// distinct from body and from each other.
func (p *planner) variants(schema *openapi3.SchemaRef, body any, l leaf, r int, slot string, n int) []any {
	var values []any
	switch {
	case r == rankEnum:
		values = slices.Clone(l.schema.Value.Enum)
	case r == rankBool:
		values = []any{!l.value.(bool)}
	case r == rankNumber:
		// Neighbours rather than unique numbers: a price or a count stays plausible.
		x := l.value.(float64)
		for k := 1.0; k <= float64(n); k++ {
			for _, y := range []float64{x + k, x - k} {
				if l.schema == nil || l.schema.Value == nil || l.schema.Value.VisitJSON(y) == nil {
					values = append(values, y)
				}
			}
		}
	}
	var out []any
	add := func(b any) {
		if len(out) < n && !reflect.DeepEqual(b, body) && !slices.ContainsFunc(out, func(o any) bool { return reflect.DeepEqual(o, b) }) {
			out = append(out, b)
		}
	}
	for _, v := range values {
		if b, err := runtimeexpr.Set(runtimeexpr.Clone(body), l.ptr, v); err == nil {
			add(b)
		}
	}
	if s, ok := l.value.(string); ok && !shaped(l) {
		// A suffix, where the schema admits it: cheaper than a unique value, as plain.
		for i := 2; len(out) < n && i <= n+1; i++ {
			v := fmt.Sprintf("%s-%d", s, i)
			if l.schema != nil && l.schema.Value != nil && l.schema.Value.VisitJSON(v) != nil {
				break
			}
			if b, err := runtimeexpr.Set(runtimeexpr.Clone(body), l.ptr, v); err == nil {
				add(b)
			}
		}
	}
	for i := 1; len(out) < n && i <= n && r != rankEnum && r != rankBool; i++ {
		// Shaped strings, and values the above could not vary enough, get values unique to
		// their racer, made within the schema.
		racer := fmt.Sprintf("%s/racer-%d%s", slot, i, l.ptr)
		if schema != nil {
			if b, err := p.gen.UniqueAt(schema, runtimeexpr.Clone(body), l.ptr, racer); err == nil {
				add(b)
			}
		}
	}
	return out
}

// shaped reports whether l's schema constrains its string by a pattern or a format, which a
// suffix may break.
func shaped(l leaf) bool {
	return l.schema != nil && l.schema.Value != nil && (l.schema.Value.Pattern != "" || l.schema.Value.Format != "")
}
