package synth

import (
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/conflictcheck/conflictcheck/internal/runtimeexpr"
)

// Bounds that keep synthesis finite on any schema.
const (
	maxSteps      = 20000 // schemas visited per call
	maxAttempts   = 4     // values tried per schema before giving up
	softDepth     = 4     // nesting past which optional recursive members are left out
	hardDepth     = 24    // nesting past which synthesis fails (required recursion)
	maxCompose    = 32    // nested allOf/oneOf/anyOf resolutions
	maxStringLen  = 4096  // longest string made (runes)
	maxArrayLen   = 256   // most array items made
	maxObjectSize = 256   // most object members made
)

// errBudget ends a call whose schema is too large or too recursive to synthesise.
var errBudget = fmt.Errorf("schema too complex: more than %d subschemas visited", maxSteps)

// walker makes one value: it holds the random stream, the schemas being made (to stop
// recursion) and, in unique mode, where unique leaves are derived from.
type walker struct {
	rng            *rand.Rand
	ignoreExamples bool
	uniq           *uniqueState
	graph          *schemaGraph
	active         map[int]int // schemas being made, per component of the graph
	depth          int
	compose        int
	attempt        int // of the value being made: later attempts vary numbers systematically
	steps          int
}

// uniqueState is the unique mode of a walker: leaves that can vary are derived from the
// RunID and their slot instead of the stream.
type uniqueState struct {
	runID, slot string
	numbers     bool   // make numbers unique too (second pass, when no string could be)
	hint        string // a realistic value for the top-level string, e.g. the example's
	made        int    // unique leaves made
	why         error  // why the first leaf that could not be unique could not
}

// check validates v against s (stopping at the first error) or, when explain, says everything
// wrong with it.
func (w *walker) check(s *openapi3.Schema, v any, explain bool) error {
	err := w.graph.validate(s, v, explain)
	if explain {
		return concise(err)
	}
	return err
}

// notUnique records why a leaf could not be made unique.
func (w *walker) notUnique(format string, args ...any) {
	if w.uniq != nil && w.uniq.why == nil {
		w.uniq.why = fmt.Errorf(format, args...)
	}
}

var anySchema = &openapi3.Schema{}

// gen makes a value for s; slot is the JSON pointer of the value inside the top-level one.
// An error is final: s cannot be satisfied by this walker (callers do not retry it).
func (w *walker) gen(s *openapi3.Schema, slot string) (any, error) {
	w.steps++
	if w.steps > maxSteps {
		return nil, errBudget
	}
	if w.depth > hardDepth {
		return nil, fmt.Errorf("values nest deeper than %d levels (a required member recurses?)", hardDepth)
	}
	if w.compose > maxCompose {
		return nil, fmt.Errorf("allOf/oneOf/anyOf nest deeper than %d levels", maxCompose)
	}
	if s.Always != nil {
		if !*s.Always {
			return nil, errors.New("the false schema accepts no value")
		}
		s = anySchema
	}
	if c, ok := w.graph.component(s); ok {
		w.active[c]++
		defer func() { w.active[c]-- }()
	}

	if !w.ignoreExamples && w.uniq == nil {
		for _, ex := range fixedValues(s) {
			if v, err := jsonCopy(ex); err == nil {
				if v = withoutReadOnly(s, v); w.check(s, v, false) == nil {
					return v, nil
				}
			}
		}
	}
	if s.Const != nil {
		w.notUnique("the schema is a const")
		v, err := jsonCopy(s.Const)
		if err != nil {
			return nil, fmt.Errorf("const: %w", err)
		}
		if err := w.check(s, v, true); err != nil {
			return nil, fmt.Errorf("const: %w", err)
		}
		return v, nil
	}
	if len(s.Enum) > 0 {
		return w.genEnum(s)
	}
	if len(s.AllOf) > 0 {
		return w.genAllOf(s, slot)
	}
	if len(s.OneOf) > 0 || len(s.AnyOf) > 0 {
		return w.genChoice(s, slot)
	}
	return w.genPlain(s, slot)
}

// withoutReadOnly removes from v (a copy it may change) the members s marks readOnly, so that
// an example of a resource, with its id, can serve as a request.
func withoutReadOnly(s *openapi3.Schema, v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, member := range x {
			p := propertySchema(s, k, map[*openapi3.Schema]bool{})
			switch {
			case p == nil:
			case p.ReadOnly:
				delete(x, k)
			default:
				x[k] = withoutReadOnly(p, member)
			}
		}
	case []any:
		if s.Items != nil {
			for i, item := range x {
				x[i] = withoutReadOnly(s.Items.Value, item)
			}
		}
	}
	return v
}

// propertySchema returns the schema of property name in s or its allOf members.
func propertySchema(s *openapi3.Schema, name string, seen map[*openapi3.Schema]bool) *openapi3.Schema {
	if s == nil || seen[s] {
		return nil
	}
	seen[s] = true
	if p := s.Properties[name]; p != nil {
		return p.Value
	}
	for _, ref := range s.AllOf {
		if p := propertySchema(ref.Value, name, seen); p != nil {
			return p
		}
	}
	return nil
}

// fixedValues lists the values the schema itself proposes: example, 3.1 examples, default.
func fixedValues(s *openapi3.Schema) []any {
	var out []any
	if s.Example != nil {
		out = append(out, s.Example)
	}
	out = append(out, s.Examples...)
	if s.Default != nil {
		out = append(out, s.Default)
	}
	return out
}

// genEnum picks a random enum member that validates, preferring non-null ones.
func (w *walker) genEnum(s *openapi3.Schema) (any, error) {
	w.notUnique("the schema is an enum")
	order := w.rng.Perm(len(s.Enum))
	slices.SortStableFunc(order, func(a, b int) int {
		return boolInt(s.Enum[a] == nil) - boolInt(s.Enum[b] == nil)
	})
	for _, i := range order {
		v, err := jsonCopy(s.Enum[i])
		if err == nil && w.check(s, v, false) == nil {
			return v, nil
		}
	}
	return nil, errors.New("no enum value satisfies the schema")
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// genAllOf makes a value for the merge of s and its allOf members, checked against s itself.
func (w *walker) genAllOf(s *openapi3.Schema, slot string) (any, error) {
	m, err := merge(s)
	if err != nil {
		return nil, err
	}
	w.compose++
	defer func() { w.compose-- }()
	var last any
	for attempt := 0; attempt < maxAttempts; attempt++ {
		v, err := w.gen(m, slot)
		if err != nil {
			return nil, fmt.Errorf("allOf: %w", err)
		}
		if w.check(s, v, false) == nil {
			return v, nil
		}
		last = v
	}
	return nil, fmt.Errorf("allOf: %w", w.check(s, last, true))
}

// genChoice makes a value for one branch of s's oneOf (or anyOf) merged with the rest of s, the
// first in order that makes s valid (for oneOf, that no other branch accepts too). A
// discriminator, when present, names the branch in the value.
func (w *walker) genChoice(s *openapi3.Schema, slot string) (any, error) {
	base := *s
	base.Example, base.Examples, base.Default, base.Discriminator = nil, nil, nil, nil
	branches, keyword := s.OneOf, "oneOf"
	if len(branches) > 0 {
		base.OneOf = nil
	} else {
		branches, keyword = s.AnyOf, "anyOf"
		base.AnyOf = nil
	}
	order := make([]int, len(branches))
	for i := range order {
		order[i] = i
	}
	deep := w.depth >= softDepth
	slices.SortStableFunc(order, func(a, b int) int {
		return w.branchCost(branches[a].Value, deep) - w.branchCost(branches[b].Value, deep)
	})
	w.compose++
	defer func() { w.compose-- }()
	var lastErr error
	var last any
	tried := false
	for _, i := range order {
		branch := branches[i]
		cand, err := merge(&openapi3.Schema{AllOf: openapi3.SchemaRefs{{Value: &base}, branch}})
		if err != nil {
			lastErr = err
			continue
		}
		for attempt := 0; attempt < 2; attempt++ {
			v, err := w.gen(cand, slot)
			if err != nil {
				if errors.Is(err, errBudget) {
					return nil, err
				}
				lastErr = err
				break
			}
			if named, ok := discriminate(s, branch, v); ok && w.check(s, named, false) == nil {
				return named, nil
			}
			if err := w.check(s, v, false); err != nil {
				last, tried = v, true
				continue
			}
			return v, nil
		}
	}
	if tried {
		lastErr = w.check(s, last, true)
	}
	if lastErr != nil {
		return nil, fmt.Errorf("%s: no branch makes a valid value: %w", keyword, lastErr)
	}
	return nil, fmt.Errorf("%s: no branch makes a valid value", keyword)
}

// branchCost orders branches: null-only ones last, and when deep, recursive ones after the rest.
func (w *walker) branchCost(b *openapi3.Schema, deep bool) int {
	cost := 0
	if b.Type.Is(openapi3.TypeNull) {
		cost += 2
		if deep {
			cost -= 4
		}
	}
	if deep && w.recursive(b) {
		cost++
	}
	return cost
}

// discriminate returns v with s's discriminator property naming branch, when it can name it.
func discriminate(s *openapi3.Schema, branch *openapi3.SchemaRef, v any) (any, bool) {
	d := s.Discriminator
	obj, isObj := v.(map[string]any)
	if d == nil || d.PropertyName == "" || !isObj {
		return nil, false
	}
	name := ""
	for _, key := range slices.Sorted(maps.Keys(d.Mapping)) {
		if ref := d.Mapping[key].Ref; ref == branch.Ref || (ref != "" && strings.HasSuffix(branch.Ref, "/"+ref)) {
			name = key
			break
		}
	}
	if name == "" && branch.Ref != "" {
		name = branch.Ref[strings.LastIndex(branch.Ref, "/")+1:]
	}
	if name == "" {
		return nil, false
	}
	named := maps.Clone(obj)
	named[d.PropertyName] = name
	return named, true
}

// genPlain makes a value of one of s's types (inferred when s has none), checked against s.
func (w *walker) genPlain(s *openapi3.Schema, slot string) (any, error) {
	types := w.typeOrder(s)
	dead := make([]error, len(types))
	var last any
	var lastErr error
	for attempt := 0; attempt < maxAttempts; attempt++ {
		alive := false
		for i, t := range types {
			if dead[i] != nil {
				continue
			}
			alive = true
			w.attempt = attempt
			v, err := w.genType(s, t, slot)
			w.attempt = 0
			if err != nil {
				if errors.Is(err, errBudget) {
					return nil, err
				}
				dead[i] = err
				continue
			}
			if err := w.check(s, v, false); err != nil {
				last, lastErr = v, err
				continue
			}
			return v, nil
		}
		if !alive {
			break
		}
	}
	if lastErr != nil {
		return nil, fmt.Errorf("no valid value after %d attempts: %w", maxAttempts, w.check(s, last, true))
	}
	dead = slices.DeleteFunc(dead, func(err error) bool { return err == nil })
	if len(dead) == 1 {
		return nil, dead[0] // keep its type: member errors merge their paths
	}
	return nil, errors.Join(dead...)
}

// typeOrder lists the types to try for s: its non-null types in order, then null if allowed
// (first, when s recurses deep down, so that recursion ends).
func (w *walker) typeOrder(s *openapi3.Schema) []string {
	var types []string
	if s.Type.IsEmpty() {
		types = []string{inferType(s)}
		if s.Not != nil {
			for _, t := range []string{openapi3.TypeString, openapi3.TypeInteger, openapi3.TypeObject,
				openapi3.TypeArray, openapi3.TypeBoolean} {
				if t != types[0] {
					types = append(types, t)
				}
			}
		}
	} else {
		for _, t := range s.Type.Slice() {
			if t != openapi3.TypeNull && !slices.Contains(types, t) {
				types = append(types, t)
			}
		}
	}
	if s.Nullable || s.Type.Includes(openapi3.TypeNull) {
		if w.depth >= softDepth && w.recursive(s) {
			types = append([]string{openapi3.TypeNull}, types...)
		} else {
			types = append(types, openapi3.TypeNull)
		}
	}
	return types
}

// inferType guesses the type of a schema without one from the keywords it uses.
func inferType(s *openapi3.Schema) string {
	switch {
	case len(s.Properties) > 0 || len(s.Required) > 0 || s.MinProps > 0 || s.MaxProps != nil ||
		s.AdditionalProperties.Has != nil || s.AdditionalProperties.Schema != nil ||
		len(s.PatternProperties) > 0 || s.PropertyNames != nil || s.Discriminator != nil:
		return openapi3.TypeObject
	case s.Items != nil || len(s.PrefixItems) > 0 || s.MinItems > 0 || s.MaxItems != nil ||
		s.UniqueItems || s.Contains != nil:
		return openapi3.TypeArray
	case s.Format == "int32" || s.Format == "int64":
		return openapi3.TypeInteger
	case s.Min != nil || s.Max != nil || s.MultipleOf != nil || s.ExclusiveMin.IsSet() ||
		s.ExclusiveMax.IsSet() || s.Format == "float" || s.Format == "double":
		return openapi3.TypeNumber
	}
	return openapi3.TypeString
}

// genType makes a value of type t for s.
func (w *walker) genType(s *openapi3.Schema, t, slot string) (any, error) {
	switch t {
	case openapi3.TypeString:
		return w.genString(s, slot)
	case openapi3.TypeInteger:
		return w.genNumber(s, true, slot)
	case openapi3.TypeNumber:
		return w.genNumber(s, false, slot)
	case openapi3.TypeBoolean:
		w.notUnique("a boolean cannot be unique")
		return w.rng.IntN(2) == 0, nil
	case openapi3.TypeNull:
		w.notUnique("null cannot be unique")
		return nil, nil
	case openapi3.TypeArray:
		return w.genArray(s, slot)
	case openapi3.TypeObject:
		return w.genObject(s, slot)
	}
	return nil, fmt.Errorf("unknown type %q", t)
}

// recursive reports whether a schema under s is one being made, i.e. s recurses. s is one
// being made or a subschema of one (or a merge of those), so a schema under the root that
// leads from s back to one being made shares its component.
func (w *walker) recursive(s *openapi3.Schema) bool {
	if c, ok := w.graph.component(s); ok {
		return w.graph.comps[c].cyclic && w.active[c] > 0
	}
	return w.leadsToActive(s, map[*openapi3.Schema]bool{})
}

// leadsToActive reports whether a schema under s, a merge synthesis made, is in a component
// with a schema being made.
func (w *walker) leadsToActive(s *openapi3.Schema, seen map[*openapi3.Schema]bool) bool {
	seen[s] = true
	for _, ref := range subschemas(s) {
		if ref == nil || ref.Value == nil || seen[ref.Value] {
			continue
		}
		if c, ok := w.graph.component(ref.Value); ok {
			if w.active[c] > 0 {
				return true
			}
		} else if w.leadsToActive(ref.Value, seen) {
			return true
		}
	}
	return false
}

// genArray makes an array: minItems items (one if none is required and the schema allows),
// distinct when uniqueItems asks.
func (w *walker) genArray(s *openapi3.Schema, slot string) (any, error) {
	if s.MinItems > maxArrayLen {
		return nil, fmt.Errorf("minItems %d is more than the %d items synthesis makes", s.MinItems, maxArrayLen)
	}
	maxItems := uint64(maxArrayLen)
	if s.MaxItems != nil && *s.MaxItems < maxItems {
		maxItems = *s.MaxItems
	}
	if s.MinItems > maxItems {
		return nil, fmt.Errorf("minItems %d exceeds maxItems %d", s.MinItems, maxItems)
	}
	n := max(s.MinItems, 1, uint64(len(s.PrefixItems)))
	if s.MinItems == 0 && w.depth >= softDepth && w.recursive(s) {
		n = 0
	}
	n = min(n, maxItems)
	w.depth++
	defer func() { w.depth-- }()
	items := make([]any, 0, n)
	for i := range int(n) {
		sub := anySchema
		if i < len(s.PrefixItems) {
			sub = s.PrefixItems[i].Value
		} else if s.Items != nil {
			sub = s.Items.Value
		}
		v, err := w.distinctItem(s, sub, items, slot+"/"+strconv.Itoa(i))
		if err != nil {
			if i >= int(s.MinItems) && !errors.Is(err, errBudget) {
				break // an optional item: fewer items are fine
			}
			return nil, atMember(strconv.Itoa(i), err)
		}
		items = append(items, v)
	}
	if s.Contains != nil {
		return w.addContained(s, items, slot)
	}
	return items, nil
}

// distinctItem makes an item for sub, different from items when s has uniqueItems.
func (w *walker) distinctItem(s, sub *openapi3.Schema, items []any, slot string) (any, error) {
	for attempt := 0; attempt < 2*maxAttempts; attempt++ {
		v, err := w.gen(sub, slot)
		if err != nil {
			return nil, err
		}
		if !s.UniqueItems || !slices.ContainsFunc(items, func(x any) bool { return jsonEqual(x, v) }) {
			return v, nil
		}
	}
	return nil, errors.New("cannot make distinct items (uniqueItems)")
}

// addContained appends items for a 3.1 contains until minContains (default 1) of them match.
func (w *walker) addContained(s *openapi3.Schema, items []any, slot string) (any, error) {
	want := uint64(1)
	if s.MinContains != nil {
		want = *s.MinContains
	}
	have := uint64(0)
	for _, it := range items {
		if w.check(s.Contains.Value, it, false) == nil {
			have++
		}
	}
	for have < want {
		if len(items) >= maxArrayLen || (s.MaxItems != nil && uint64(len(items)) >= *s.MaxItems) {
			return nil, errors.New("cannot fit the items contains asks for")
		}
		sub := s.Contains.Value
		if s.Items != nil {
			var err error
			if sub, err = merge(&openapi3.Schema{AllOf: openapi3.SchemaRefs{s.Contains, s.Items}}); err != nil {
				return nil, fmt.Errorf("contains: %w", err)
			}
		}
		v, err := w.distinctItem(s, sub, items, slot+"/"+strconv.Itoa(len(items)))
		if err != nil {
			return nil, fmt.Errorf("contains: %w", err)
		}
		items = append(items, v)
		have++
	}
	return items, nil
}

// genObject makes an object with every property but readOnly ones (optional recursive ones
// stop past softDepth), the required members, and extra members when minProperties asks.
func (w *walker) genObject(s *openapi3.Schema, slot string) (any, error) {
	if s.MinProps > maxObjectSize {
		return nil, fmt.Errorf("minProperties %d is more than the %d members synthesis makes", s.MinProps, maxObjectSize)
	}
	if s.MaxProps != nil && s.MinProps > *s.MaxProps {
		return nil, fmt.Errorf("minProperties %d exceeds maxProperties %d", s.MinProps, *s.MaxProps)
	}
	w.depth++
	defer func() { w.depth-- }()
	required := map[string]bool{}
	for _, name := range s.Required {
		required[name] = true
	}
	obj := map[string]any{}
	var optional []string
	for _, name := range sortedKeys(s.Properties) {
		p := s.Properties[name].Value
		if p.ReadOnly {
			continue
		}
		if !required[name] && w.depth >= softDepth && w.recursive(p) {
			continue
		}
		v, err := w.gen(p, slot+"/"+runtimeexpr.EscapeToken(name))
		if err != nil {
			if required[name] || errors.Is(err, errBudget) {
				return nil, atMember(name, err)
			}
			continue
		}
		obj[name] = v
		if !required[name] {
			optional = append(optional, name)
		}
	}
	for _, name := range s.Required {
		if _, ok := obj[name]; ok || s.Properties[name] != nil {
			continue
		}
		v, err := w.extraValue(s, name, slot)
		if err != nil {
			return nil, atMember(name, err)
		}
		obj[name] = v
	}
	for s.MaxProps != nil && uint64(len(obj)) > *s.MaxProps && len(optional) > 0 {
		delete(obj, optional[len(optional)-1])
		optional = optional[:len(optional)-1]
	}
	want := s.MinProps
	if want == 0 && len(s.Properties) == 0 && (s.AdditionalProperties.Schema != nil || len(s.PatternProperties) > 0) {
		want = 1 // a map: one entry looks like a real one
		if s.MaxProps != nil && *s.MaxProps == 0 {
			want = 0
		}
	}
	for i := 0; uint64(len(obj)) < want; i++ {
		if i > 2*maxObjectSize {
			return nil, errors.New("cannot make enough distinct member names")
		}
		name, err := w.extraName(s, i)
		if err != nil {
			return nil, err
		}
		if _, taken := obj[name]; taken {
			continue
		}
		v, err := w.extraValue(s, name, slot)
		if err != nil {
			return nil, atMember(name, err)
		}
		obj[name] = v
	}
	return obj, nil
}

// extraName returns a name for the i-th member beyond the declared properties.
func (w *walker) extraName(s *openapi3.Schema, i int) (string, error) {
	closed := s.AdditionalProperties.Has != nil && !*s.AdditionalProperties.Has
	// Names from patternProperties first; every other one plain, when allowed, in case the
	// patterns admit few names.
	if len(s.PatternProperties) > 0 && (closed || i%2 == 0) {
		pats := sortedKeys(s.PatternProperties)
		p, err := compilePattern(pats[i%len(pats)])
		if err != nil {
			return "", err
		}
		name, _, err := p.generate(w.rng, 1, 32)
		if err == nil && p.re.MatchString(name) {
			return name, nil
		}
	}
	if closed {
		return "", errors.New("more members are needed but additionalProperties is false")
	}
	if s.PropertyNames != nil {
		v, err := w.gen(s.PropertyNames.Value, "")
		if err != nil {
			return "", fmt.Errorf("propertyNames: %w", err)
		}
		if name, ok := v.(string); ok {
			return name, nil
		}
		return "", errors.New("propertyNames does not make strings")
	}
	if i == 0 {
		return "conflictcheck", nil
	}
	return "conflictcheck-" + w.word(), nil
}

// extraValue makes the value of a member not among the declared properties.
func (w *walker) extraValue(s *openapi3.Schema, name, slot string) (any, error) {
	for _, pat := range sortedKeys(s.PatternProperties) {
		p, err := compilePattern(pat)
		if err == nil && p.re.MatchString(name) {
			return w.gen(s.PatternProperties[pat].Value, slot+"/"+runtimeexpr.EscapeToken(name))
		}
	}
	if s.AdditionalProperties.Has != nil && !*s.AdditionalProperties.Has {
		return nil, errors.New("it is not declared and additionalProperties is false")
	}
	sub := anySchema
	if ap := s.AdditionalProperties.Schema; ap != nil {
		sub = ap.Value
	}
	return w.gen(sub, slot+"/"+runtimeexpr.EscapeToken(name))
}

// sortedKeys returns m's keys in order, so that generation does not depend on map order.
func sortedKeys[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}

// jsonEqual compares two plain JSON values.
func jsonEqual(a, b any) bool {
	switch x := a.(type) {
	case map[string]any:
		y, ok := b.(map[string]any)
		return ok && maps.EqualFunc(x, y, jsonEqual)
	case []any:
		y, ok := b.([]any)
		return ok && slices.EqualFunc(x, y, jsonEqual)
	}
	return a == b
}
