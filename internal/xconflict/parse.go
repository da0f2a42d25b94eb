package xconflict

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/conflictcheck/conflictcheck/openapi"
	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
	"golang.org/x/text/language"
	"golang.org/x/text/message"
)

// schemaURL is the $id of the embedded x-conflict schema.
const schemaURL = "urn:conflictcheck:schema:x-conflict"

// conflictURL is the schema of one conflict object inside it.
const conflictURL = schemaURL + "#/$defs/conflict"

// Error is an invalid x-conflict value: Operation's Field (e.g. "x-conflict[1].invariant")
// breaks the schema as Message says.
type Error struct {
	Operation string
	Field     string
	Message   string
	// More counts the further problems of the same value, left out of the message.
	More int
}

func (e *Error) Error() string {
	msg := fmt.Sprintf("%s: %s: %s", e.Operation, e.Field, e.Message)
	switch {
	case e.More == 1:
		msg += " (and 1 more problem)"
	case e.More > 1:
		msg += fmt.Sprintf(" (and %d more problems)", e.More)
	}
	return msg
}

// compiled is the schema, compiled once, with what the messages read from its text.
type compiled struct {
	conflict *jsonschema.Schema
	// onlyFor maps a field that one kind alone may carry (the schema's if/then allOf) to that kind.
	onlyFor map[string]string
	// defs holds the description of each $defs entry, which names what a pattern means.
	defs map[string]string
	err  error
}

var (
	compileOnce sync.Once
	schema      compiled
)

// compileSchema compiles the embedded x-conflict schema on first use.
func compileSchema() (*compiled, error) {
	compileOnce.Do(func() {
		schema.err = func() error {
			doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(openapi.XConflictSchema))
			if err != nil {
				return fmt.Errorf("parse x-conflict schema: %w", err)
			}
			c := jsonschema.NewCompiler()
			if err := c.AddResource(schemaURL, doc); err != nil {
				return fmt.Errorf("add x-conflict schema: %w", err)
			}
			if schema.conflict, err = c.Compile(conflictURL); err != nil {
				return fmt.Errorf("compile x-conflict schema: %w", err)
			}
			var text struct {
				Defs map[string]struct {
					Description string `json:"description"`
					AllOf       []struct {
						If struct {
							Properties struct {
								Kind struct {
									Not struct {
										Const string `json:"const"`
									} `json:"not"`
								} `json:"kind"`
							} `json:"properties"`
						} `json:"if"`
						Then struct {
							Properties map[string]json.RawMessage `json:"properties"`
						} `json:"then"`
					} `json:"allOf"`
				} `json:"$defs"`
			}
			if err := json.Unmarshal(openapi.XConflictSchema, &text); err != nil {
				return fmt.Errorf("parse x-conflict schema: %w", err)
			}
			schema.onlyFor = map[string]string{}
			for _, a := range text.Defs["conflict"].AllOf {
				for field := range a.Then.Properties {
					schema.onlyFor[field] = a.If.Properties.Kind.Not.Const
				}
			}
			schema.defs = map[string]string{}
			for name, d := range text.Defs {
				schema.defs[name] = d.Description
			}
			return nil
		}()
	})
	return &schema, schema.err
}

// Parse validates raw, the decoded value of operationID's x-conflict extension (one conflict
// object or a non-empty list of them), against the embedded schema and returns its scenarios.
// The error names the operation and the offending field, e.g.
// `createItem: x-conflict.kind: "dupe" is not one of duplicate-create, …`.
func Parse(operationID string, raw any) ([]Conflict, error) {
	sch, err := compileSchema()
	if err != nil {
		return nil, err
	}
	whole := func(msg string) *Error { return &Error{Operation: operationID, Field: "x-conflict", Message: msg} }
	// A JSON round trip gives the validator and the decoder one representation (json.Number),
	// whatever decoder produced raw.
	b, err := json.Marshal(raw)
	if err != nil {
		return nil, whole("not a JSON value: " + err.Error())
	}
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		return nil, whole("not a JSON value: " + err.Error())
	}

	var items []any
	list := false
	switch v := v.(type) {
	case map[string]any:
		items = []any{v}
	case []any:
		if len(v) == 0 {
			return nil, whole("must not be an empty list")
		}
		items, list = v, true
	default:
		return nil, whole("must be a conflict object or a list of them, got " + describe(v))
	}

	var first *Error
	more := 0
	for i, item := range items {
		err := sch.conflict.Validate(item)
		if err == nil {
			continue
		}
		var ve *jsonschema.ValidationError
		if !errors.As(err, &ve) {
			return nil, fmt.Errorf("%s: x-conflict: %w", operationID, err)
		}
		leaves := sch.leaves(ve, item)
		if first == nil {
			field := "x-conflict"
			if list {
				field = fmt.Sprintf("x-conflict[%d]", i)
			}
			first = &Error{Operation: operationID, Field: field + leaves[0].field, Message: leaves[0].msg}
			more += len(leaves) - 1
		} else {
			more += len(leaves)
		}
	}
	if first != nil {
		first.More = more
		return nil, first
	}
	// Valid, so b decodes into the Go types in one go.
	var out []Conflict
	if list {
		err = json.Unmarshal(b, &out)
	} else {
		out = make([]Conflict, 1)
		err = json.Unmarshal(b, &out[0])
	}
	if err != nil {
		return nil, whole(err.Error())
	}
	return out, nil
}

// problem is one failed leaf of the validator's error tree, rendered.
type problem struct {
	field string // ".invariant.read", relative to the conflict object
	msg   string
	rank  int // lower is reported first
}

// leaves flattens the validator's error tree into its most specific problems, the most telling
// first: a wrong kind explains the if/then failures it causes, so it comes before them.
func (c *compiled) leaves(ve *jsonschema.ValidationError, instance any) []problem {
	var out []problem
	var walk func(e *jsonschema.ValidationError)
	walk = func(e *jsonschema.ValidationError) {
		if p, ok := c.render(e, instance); ok {
			out = append(out, p)
			return
		}
		for _, cause := range e.Causes {
			walk(cause)
		}
	}
	walk(ve)
	if len(out) == 0 {
		out = append(out, problem{msg: flatten(ve.Error())})
	}
	slices.SortStableFunc(out, func(a, b problem) int {
		if a.rank != b.rank {
			return a.rank - b.rank
		}
		return strings.Compare(a.field, b.field)
	})
	return out
}

// render turns one node of the error tree into a problem, or reports false for an inner node
// whose causes say more.
func (c *compiled) render(e *jsonschema.ValidationError, instance any) (problem, bool) {
	field, value := locate(instance, e.InstanceLocation)
	p := problem{field: field, rank: 5}
	switch k := e.ErrorKind.(type) {
	case *kind.Enum:
		want := make([]string, len(k.Want))
		for i, w := range k.Want {
			want[i] = fmt.Sprint(w)
		}
		p.msg = fmt.Sprintf("%s is not one of %s", describeValue(k.Got), strings.Join(want, ", "))
		p.rank = 0
	case *kind.Type:
		p.msg = fmt.Sprintf("must be %s, got %s", article(strings.Join(k.Want, " or ")), describe(value))
		p.rank = 1
	case *kind.Required:
		if len(k.Missing) == 1 {
			p.msg = fmt.Sprintf("missing field %q", k.Missing[0])
		} else {
			p.msg = "missing fields " + quoteAll(k.Missing)
		}
		p.rank = 2
	case *kind.AdditionalProperties:
		names := slices.Sorted(slices.Values(k.Properties))
		p.field += fieldSegment(names[0])
		p.msg = "unknown field"
		if known := knownFields(e.SchemaURL); len(known) > 0 {
			p.msg += " (known: " + strings.Join(known, ", ") + ")"
		}
		p.rank = 3
	case *kind.FalseSchema:
		name := e.InstanceLocation[len(e.InstanceLocation)-1]
		p.msg = "not allowed"
		if obj, ok := instance.(map[string]any); ok {
			if got, ok := obj["kind"].(string); ok {
				p.msg += " for kind " + got
			}
		}
		if only := c.onlyFor[name]; only != "" {
			p.msg += " (only for " + only + ")"
		}
		p.rank = 4
	case *kind.AnyOf:
		var missing []string
		for _, cause := range e.Causes {
			r, ok := cause.ErrorKind.(*kind.Required)
			if !ok {
				return p, false
			}
			missing = append(missing, r.Missing...)
		}
		p.msg = "needs " + strings.Join(missing, " or ")
	case *kind.MinLength:
		if k.Want != 1 {
			return c.fallback(p, e)
		}
		p.msg = "must not be empty"
	case *kind.PropertyNames:
		// The validator reports a wrong name at an unrelated instance location, so the field
		// comes from the schema's location.
		p.field = schemaField(e.SchemaURL)
		p.msg = fmt.Sprintf("%s is not a valid name", describeValue(k.Property))
		if len(e.Causes) == 1 {
			if ml, ok := e.Causes[0].ErrorKind.(*kind.MinLength); ok && ml.Want == 1 {
				p.msg = "names must not be empty"
			}
		}
	case *kind.MinItems:
		if k.Want == 1 {
			p.msg = "must not be empty"
		} else {
			p.msg = fmt.Sprintf("needs at least %d items, got %d", k.Want, k.Got)
		}
	case *kind.MinProperties, *kind.MaxProperties:
		if strings.HasSuffix(e.SchemaURL, "/properties/version") {
			p.msg = "needs exactly one of " + strings.Join(knownFields(e.SchemaURL), ", ")
			break
		}
		return c.fallback(p, e)
	case *kind.UniqueItems:
		arr, _ := value.([]any)
		if d := k.Duplicates[1]; d < len(arr) {
			p.msg = fmt.Sprintf("%s is listed twice", describeValue(arr[d]))
		} else {
			p.msg = fmt.Sprintf("items %d and %d are equal", k.Duplicates[0], k.Duplicates[1])
		}
	case *kind.Pattern:
		if what := c.def(e.SchemaURL); what != "" {
			p.msg = fmt.Sprintf("%q is not %s", k.Got, what)
			break
		}
		return c.fallback(p, e)
	case *kind.Minimum:
		p.msg = c.bound("at least", k.Want, k.Got, e.SchemaURL)
	case *kind.Maximum:
		p.msg = c.bound("at most", k.Want, k.Got, e.SchemaURL)
	case *kind.Schema, *kind.Group, *kind.AllOf, *kind.Reference, *kind.OneOf:
		return p, false
	default:
		if len(e.Causes) > 0 {
			return p, false
		}
		return c.fallback(p, e)
	}
	return p, true
}

// bound renders a number beyond a minimum or maximum ("at least"), naming what the $defs entry
// at url holds when there is one.
func (c *compiled) bound(limit string, want, got *big.Rat, url string) string {
	msg := fmt.Sprintf("must be %s %s, got %s", limit, ratString(want), ratString(got))
	if what := c.def(url); what != "" {
		msg = fmt.Sprintf("%s is not %s: %s", ratString(got), what, msg)
	}
	return msg
}

// fallback renders a problem with the validator's own words.
func (c *compiled) fallback(p problem, e *jsonschema.ValidationError) (problem, bool) {
	p.msg = flatten(e.ErrorKind.LocalizedString(message.NewPrinter(language.English)))
	return p, true
}

// def returns what a $defs entry holds, in words for "… is not …", when url points into one.
func (c *compiled) def(url string) string {
	_, frag, ok := strings.Cut(url, "#/$defs/")
	if !ok {
		return ""
	}
	name, _, _ := strings.Cut(frag, "/")
	if name == "conflict" {
		return ""
	}
	d := c.defs[name]
	d, _, _ = strings.Cut(d, ";")
	d = strings.TrimSuffix(d, ".")
	if d == "" {
		return ""
	}
	return strings.ToLower(d[:1]) + d[1:]
}

// knownFields lists the fields of the object schema at url, in the order of the Go types.
func knownFields(url string) []string {
	var t reflect.Type
	switch {
	case strings.HasSuffix(url, "#/$defs/conflict"):
		t = reflect.TypeFor[Conflict]()
	case strings.HasSuffix(url, "/properties/invariant"):
		t = reflect.TypeFor[Invariant]()
	case strings.HasSuffix(url, "/properties/version"):
		t = reflect.TypeFor[Version]()
	default:
		return nil
	}
	return jsonFields(t)
}

// jsonFields returns the JSON names of t's fields in declaration order.
func jsonFields(t reflect.Type) []string {
	var names []string
	for f := range t.Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name != "" && name != "-" {
			names = append(names, name)
		}
	}
	return names
}

// schemaField renders the instance field a conflict schema location constrains:
// "…#/$defs/conflict/properties/bind/propertyNames" is ".bind".
func schemaField(url string) string {
	_, frag, _ := strings.Cut(url, "#/$defs/conflict")
	var b strings.Builder
	segs := strings.Split(frag, "/")
	for i := 0; i+1 < len(segs); i++ {
		if segs[i] == "properties" {
			b.WriteString(fieldSegment(segs[i+1]))
			i++
		}
	}
	return b.String()
}

// fieldSegment renders one member name of a field path: ".read", or `["a b"]` for a name that
// is not a plain identifier.
func fieldSegment(name string) string {
	for _, r := range name {
		if !(r == '_' || r == '-' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			return "[" + strconv.Quote(name) + "]"
		}
	}
	if name == "" {
		return `[""]`
	}
	return "." + name
}

// locate renders an instance location as a field path (".invariant.read", ".expect[0]") and
// returns the value found there.
func locate(instance any, loc []string) (string, any) {
	var b strings.Builder
	cur := instance
	for _, seg := range loc {
		switch c := cur.(type) {
		case []any:
			b.WriteString("[" + seg + "]")
			if i, err := strconv.Atoi(seg); err == nil && i >= 0 && i < len(c) {
				cur = c[i]
			} else {
				cur = nil
			}
		case map[string]any:
			b.WriteString(fieldSegment(seg))
			cur = c[seg]
		default:
			b.WriteString(fieldSegment(seg))
			cur = nil
		}
	}
	return b.String(), cur
}

// describe names a JSON value's type, with the value when it is short.
func describe(v any) string {
	switch v := v.(type) {
	case nil:
		return "null"
	case map[string]any:
		return "an object"
	case []any:
		return "a list"
	case string:
		return "string " + describeValue(v)
	case bool:
		return "boolean " + strconv.FormatBool(v)
	case json.Number:
		return "number " + v.String()
	default:
		return fmt.Sprintf("%T", v)
	}
}

// describeValue quotes a string (shortened) and prints other scalars as they are.
func describeValue(v any) string {
	if s, ok := v.(string); ok {
		if len(s) > 60 {
			s = s[:60] + "…"
		}
		return strconv.Quote(s)
	}
	return fmt.Sprint(v)
}

// article prefixes a type name with "a" or "an".
func article(s string) string {
	if s == "" {
		return s
	}
	if strings.ContainsRune("aeiou", rune(s[0])) {
		return "an " + s
	}
	return "a " + s
}

func quoteAll(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = strconv.Quote(n)
	}
	return strings.Join(q, ", ")
}

func ratString(r *big.Rat) string {
	if r == nil {
		return "?"
	}
	if r.IsInt() {
		return r.Num().String()
	}
	f, _ := r.Float64()
	return strconv.FormatFloat(f, 'g', -1, 64)
}

// flatten makes a message one line.
func flatten(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
