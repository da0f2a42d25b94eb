package synth

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
)

// merge returns one schema (without allOf) that approximates s and its allOf members, flattened:
// types intersect, bounds tighten, properties and required members unite (a property declared
// twice gets both schemas as its allOf). What cannot be merged exactly (a second pattern, not,
// if/then/else) is left to validation against the original schema, which callers do. A plain
// contradiction (no common type or enum value) is an error.
func merge(s *openapi3.Schema) (*openapi3.Schema, error) {
	var parts []*openapi3.Schema
	seen := map[*openapi3.Schema]bool{}
	var flatten func(*openapi3.Schema)
	flatten = func(x *openapi3.Schema) {
		if x == nil || seen[x] {
			return
		}
		seen[x] = true
		parts = append(parts, x)
		for _, ref := range x.AllOf {
			flatten(ref.Value)
		}
	}
	flatten(s)

	m := &openapi3.Schema{}
	var types []string
	typed, allNullable, nullType, modernBounds := false, true, false, false
	props := map[string][]*openapi3.SchemaRef{}
	var items, additional []*openapi3.SchemaRef
	lo, hi := bound{v: math.Inf(-1)}, bound{v: math.Inf(1)}
	for _, p := range parts {
		if p.Always != nil && !*p.Always {
			return nil, errors.New("an allOf member is the false schema")
		}
		if !p.Type.IsEmpty() {
			pt := p.Type.Slice()
			nullable := p.Nullable || slices.Contains(pt, openapi3.TypeNull)
			nullType = nullType || slices.Contains(pt, openapi3.TypeNull)
			pt = slices.DeleteFunc(slices.Clone(pt), func(t string) bool { return t == openapi3.TypeNull })
			if !typed {
				types, typed = pt, true
			} else {
				if types = intersectTypes(types, pt); len(types) == 0 && !nullType {
					return nil, fmt.Errorf("allOf members have no type in common (%s)", typeList(parts))
				}
			}
			allNullable = allNullable && nullable
		}
		modernBounds = modernBounds || p.ExclusiveMin.Value != nil || p.ExclusiveMax.Value != nil
		if m.Format == "" {
			m.Format = p.Format
		}
		if p.Const != nil && m.Const == nil {
			m.Const = p.Const
		}
		if len(p.Enum) > 0 {
			if m.Enum == nil {
				m.Enum = slices.Clone(p.Enum)
			} else {
				m.Enum = slices.DeleteFunc(m.Enum, func(e any) bool {
					return !slices.ContainsFunc(p.Enum, func(f any) bool { return sameJSON(e, f) })
				})
				if len(m.Enum) == 0 {
					return nil, errors.New("allOf members share no enum value")
				}
			}
		}
		if m.Not == nil {
			m.Not = p.Not
		}
		if len(m.OneOf) == 0 && len(p.OneOf) > 0 {
			m.OneOf, m.Discriminator = p.OneOf, p.Discriminator
		}
		if len(m.AnyOf) == 0 && len(p.AnyOf) > 0 {
			m.AnyOf = p.AnyOf
			if m.Discriminator == nil {
				m.Discriminator = p.Discriminator
			}
		}
		m.ReadOnly = m.ReadOnly || p.ReadOnly
		m.WriteOnly = m.WriteOnly || p.WriteOnly

		lo = lo.tighter(lowerBound(p), false)
		hi = hi.tighter(upperBound(p), true)
		if p.MultipleOf != nil {
			if m.MultipleOf == nil {
				m.MultipleOf = p.MultipleOf
			} else if l, ok := lcm(*m.MultipleOf, *p.MultipleOf); ok {
				m.MultipleOf = &l
			}
		}

		m.MinLength = max(m.MinLength, p.MinLength)
		m.MaxLength = minPtr(m.MaxLength, p.MaxLength)
		if m.Pattern == "" {
			m.Pattern = p.Pattern
		}

		m.MinItems = max(m.MinItems, p.MinItems)
		m.MaxItems = minPtr(m.MaxItems, p.MaxItems)
		m.UniqueItems = m.UniqueItems || p.UniqueItems
		if p.Items != nil {
			items = append(items, p.Items)
		}
		if len(m.PrefixItems) == 0 {
			m.PrefixItems = p.PrefixItems
		}
		if m.Contains == nil {
			m.Contains, m.MinContains, m.MaxContains = p.Contains, p.MinContains, p.MaxContains
		}

		m.MinProps = max(m.MinProps, p.MinProps)
		m.MaxProps = minPtr(m.MaxProps, p.MaxProps)
		for _, name := range p.Required {
			if !slices.Contains(m.Required, name) {
				m.Required = append(m.Required, name)
			}
		}
		for name, ref := range p.Properties {
			props[name] = append(props[name], ref)
		}
		if has := p.AdditionalProperties.Has; has != nil && !*has {
			m.AdditionalProperties.Has = has
		}
		if ap := p.AdditionalProperties.Schema; ap != nil {
			additional = append(additional, ap)
		}
		for name, ref := range p.PatternProperties {
			if m.PatternProperties == nil {
				m.PatternProperties = openapi3.Schemas{}
			}
			if m.PatternProperties[name] == nil {
				m.PatternProperties[name] = ref
			}
		}
		if m.PropertyNames == nil {
			m.PropertyNames = p.PropertyNames
		}
	}
	if typed {
		switch {
		case allNullable && nullType:
			types = append(types, openapi3.TypeNull)
		case allNullable:
			m.Nullable = true
		}
		if len(types) == 0 {
			return nil, fmt.Errorf("allOf members have no type in common (%s)", typeList(parts))
		}
		m.Type = (*openapi3.Types)(&types)
	}
	lo.apply(m, false, modernBounds)
	hi.apply(m, true, modernBounds)
	m.Items = joinRefs(items)
	if m.AdditionalProperties.Has == nil {
		m.AdditionalProperties.Schema = joinRefs(additional)
	}
	if len(props) > 0 {
		m.Properties = make(openapi3.Schemas, len(props))
		for name, refs := range props {
			m.Properties[name] = joinRefs(refs)
		}
	}
	return m, nil
}

// typeList names the types of the schemas, for an error message.
func typeList(parts []*openapi3.Schema) string {
	var names []string
	for _, p := range parts {
		if !p.Type.IsEmpty() {
			names = append(names, strings.Join(p.Type.Slice(), "|"))
		}
	}
	return strings.Join(names, ", ")
}

// joinRefs returns the one schema, or an allOf of several (marked readOnly/writeOnly when one
// of them is, so that request rules see it), or nil for none.
func joinRefs(refs []*openapi3.SchemaRef) *openapi3.SchemaRef {
	switch len(refs) {
	case 0:
		return nil
	case 1:
		return refs[0]
	}
	j := &openapi3.Schema{AllOf: refs}
	for _, r := range refs {
		j.ReadOnly = j.ReadOnly || r.Value.ReadOnly
		j.WriteOnly = j.WriteOnly || r.Value.WriteOnly
	}
	return &openapi3.SchemaRef{Value: j}
}

// intersectTypes intersects two type lists; integer is a number.
func intersectTypes(a, b []string) []string {
	var out []string
	for _, t := range a {
		switch {
		case slices.Contains(b, t):
			out = append(out, t)
		case t == openapi3.TypeNumber && slices.Contains(b, openapi3.TypeInteger),
			t == openapi3.TypeInteger && slices.Contains(b, openapi3.TypeNumber):
			out = append(out, openapi3.TypeInteger)
		}
	}
	return slices.Compact(out)
}

func minPtr(a, b *uint64) *uint64 {
	switch {
	case a == nil:
		return b
	case b == nil || *a <= *b:
		return a
	}
	return b
}

// bound is a numeric bound that may be exclusive.
type bound struct {
	v    float64
	excl bool
}

// lowerBound returns s's lower bound, 3.0 and 3.1 forms alike.
func lowerBound(s *openapi3.Schema) bound {
	b := bound{v: math.Inf(-1)}
	if s.Min != nil {
		b = bound{v: *s.Min, excl: s.ExclusiveMin.IsTrue()}
	}
	if e := s.ExclusiveMin.Value; e != nil {
		b = b.tighter(bound{v: *e, excl: true}, false)
	}
	return b
}

// upperBound returns s's upper bound, 3.0 and 3.1 forms alike.
func upperBound(s *openapi3.Schema) bound {
	b := bound{v: math.Inf(1)}
	if s.Max != nil {
		b = bound{v: *s.Max, excl: s.ExclusiveMax.IsTrue()}
	}
	if e := s.ExclusiveMax.Value; e != nil {
		b = b.tighter(bound{v: *e, excl: true}, true)
	}
	return b
}

// tighter returns the tighter of two lower (upper when upper) bounds.
func (b bound) tighter(o bound, upper bool) bound {
	switch {
	case o.v == b.v:
		return bound{v: b.v, excl: b.excl || o.excl}
	case (o.v > b.v) != upper:
		return o
	}
	return b
}

// apply writes the bound into m, in the 3.1 form when modern (exclusive bounds as numbers),
// else in the 3.0 form.
func (b bound) apply(m *openapi3.Schema, upper, modern bool) {
	if math.IsInf(b.v, 0) {
		return
	}
	v, excl := b.v, b.excl
	limit, bound := &m.Min, &m.ExclusiveMin
	if upper {
		limit, bound = &m.Max, &m.ExclusiveMax
	}
	switch {
	case excl && modern:
		*bound = openapi3.ExclusiveBound{Value: &v}
	case excl:
		*limit, *bound = &v, openapi3.ExclusiveBound{Bool: &excl}
	default:
		*limit = &v
	}
}

// lcm returns the least common multiple of two positive integers given as floats.
func lcm(a, b float64) (float64, bool) {
	if a <= 0 || b <= 0 || a != math.Trunc(a) || b != math.Trunc(b) || a > 1<<40 || b > 1<<40 {
		return 0, false
	}
	x, y := int64(a), int64(b)
	for g, h := x, y; ; {
		if h == 0 {
			l := x / g * y
			return float64(l), l > 0 && l <= 1<<53
		}
		g, h = h, g%h
	}
}

// sameJSON compares two JSON values the way validation does (numbers by value).
func sameJSON(a, b any) bool {
	x, errA := jsonCopy(a)
	y, errB := jsonCopy(b)
	return errA == nil && errB == nil && jsonEqual(x, y)
}
