package synth

import (
	"encoding/base64"
	"encoding/json"
	"math"
	"net/mail"
	"net/netip"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/google/uuid"

	"github.com/conflictcheck/conflictcheck/openapi"
)

// schemaOf decodes a JSON schema of a test table.
func schemaOf(t testing.TB, text string) *openapi3.SchemaRef {
	t.Helper()
	var s openapi3.Schema
	if err := json.Unmarshal([]byte(text), &s); err != nil {
		t.Fatalf("bad schema in test table: %v\n%s", err, text)
	}
	return &openapi3.SchemaRef{Value: &s}
}

// mustValidate checks v against s as kin-openapi validates a request, independently of the
// package's own validation: with the built-in validator, or JSON Schema 2020-12 for a schema
// with OpenAPI 3.1 keywords.
func mustValidate(t testing.TB, s *openapi3.Schema, v any) {
	t.Helper()
	opts := []openapi3.SchemaValidationOption{openapi3.VisitAsRequest(),
		openapi3.WithStringFormatValidator("uuid", openapi3.NewRegexpFormatValidator(openapi3.FormatOfStringForUUIDOfRFC9562))}
	graph, err := analyse(&openapi3.SchemaRef{Value: s})
	if err != nil {
		t.Fatalf("schema: %v", err)
	}
	if graph.uses31(s) {
		opts = append(opts, openapi3.EnableJSONSchema2020())
	} else {
		opts = append(opts, openapi3.MultiErrors())
	}
	if err := s.VisitJSON(v, opts...); err != nil {
		t.Fatalf("value %s does not validate: %v", jsonText(t, v), err)
	}
}

func jsonText(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("value %#v does not encode: %v", v, err)
	}
	return string(b)
}

func loadReference(t testing.TB) *openapi3.T {
	t.Helper()
	doc, err := openapi3.NewLoader().LoadFromData(openapi.Reference)
	if err != nil {
		t.Fatalf("load reference.yaml: %v", err)
	}
	return doc
}

// Checks of a value's claimed property.

// as returns v as a T, failing the test when it is not one.
func as[T any](t *testing.T, v any) T {
	t.Helper()
	x, ok := v.(T)
	if !ok {
		t.Fatalf("value = %#v; want a %T", v, x)
	}
	return x
}

var (
	isString = as[string]
	isNumber = as[float64]
	isObject = as[map[string]any]
	isArray  = as[[]any]
)

func matches(pattern string) func(*testing.T, any) {
	re := regexp.MustCompile(pattern)
	return func(t *testing.T, v any) {
		if s := isString(t, v); !re.MatchString(s) {
			t.Errorf("value %q does not match %s", s, pattern)
		}
	}
}

func runesBetween(lo, hi int) func(*testing.T, any) {
	return func(t *testing.T, v any) {
		if n := utf8.RuneCountInString(isString(t, v)); n < lo || n > hi {
			t.Errorf("value %q has %d runes; want %d to %d", v, n, lo, hi)
		}
	}
}

func integerBetween(lo, hi float64) func(*testing.T, any) {
	return func(t *testing.T, v any) {
		if f := isNumber(t, v); f != math.Trunc(f) || f < lo || f > hi {
			t.Errorf("value %v; want an integer in [%v, %v]", f, lo, hi)
		}
	}
}

func equals(want any) func(*testing.T, any) {
	return func(t *testing.T, v any) {
		if !jsonEqual(v, want) {
			t.Errorf("value = %#v; want %#v", v, want)
		}
	}
}

func all(checks ...func(*testing.T, any)) func(*testing.T, any) {
	return func(t *testing.T, v any) {
		for _, c := range checks {
			c(t, v)
		}
	}
}

func TestBodyMakesValidValues(t *testing.T) {
	tests := []struct {
		name   string
		schema string
		check  func(*testing.T, any)
	}{
		{"plain string looks plausible", `{"type":"string"}`, all(matches(`^conflictcheck-[a-z]+$`), runesBetween(15, 30))},
		{"length range", `{"type":"string","minLength":20,"maxLength":25}`, runesBetween(20, 25)},
		{"short maxLength", `{"type":"string","maxLength":3}`, runesBetween(0, 3)},
		{"uuid", `{"type":"string","format":"uuid"}`, func(t *testing.T, v any) {
			if _, err := uuid.Parse(isString(t, v)); err != nil {
				t.Errorf("uuid %q: %v", v, err)
			}
		}},
		{"email", `{"type":"string","format":"email"}`, func(t *testing.T, v any) {
			if a, err := mail.ParseAddress(isString(t, v)); err != nil || a.Address != v {
				t.Errorf("email %q: %v", v, err)
			}
		}},
		{"short email", `{"type":"string","format":"email","maxLength":10}`, func(t *testing.T, v any) {
			if a, err := mail.ParseAddress(isString(t, v)); err != nil || a.Address != v || len(a.Address) > 10 {
				t.Errorf("email %q: %v", v, err)
			}
		}},
		{"date", `{"type":"string","format":"date"}`, func(t *testing.T, v any) {
			if _, err := time.Parse(time.DateOnly, isString(t, v)); err != nil {
				t.Errorf("date %q: %v", v, err)
			}
		}},
		{"date-time", `{"type":"string","format":"date-time"}`, func(t *testing.T, v any) {
			if _, err := time.Parse(time.RFC3339, isString(t, v)); err != nil {
				t.Errorf("date-time %q: %v", v, err)
			}
		}},
		{"uri", `{"type":"string","format":"uri"}`, func(t *testing.T, v any) {
			if u, err := url.Parse(isString(t, v)); err != nil || !u.IsAbs() || u.Host == "" {
				t.Errorf("uri %q: %v", v, err)
			}
		}},
		{"hostname", `{"type":"string","format":"hostname"}`, matches(`^([a-z0-9]([a-z0-9-]*[a-z0-9])?\.)+[a-z]{2,}$`)},
		{"ipv4", `{"type":"string","format":"ipv4"}`, func(t *testing.T, v any) {
			if a, err := netip.ParseAddr(isString(t, v)); err != nil || !a.Is4() {
				t.Errorf("ipv4 %q: %v", v, err)
			}
		}},
		{"ipv6", `{"type":"string","format":"ipv6"}`, func(t *testing.T, v any) {
			if a, err := netip.ParseAddr(isString(t, v)); err != nil || !a.Is6() || a.Is4In6() {
				t.Errorf("ipv6 %q: %v", v, err)
			}
		}},
		{"byte", `{"type":"string","format":"byte"}`, func(t *testing.T, v any) {
			if _, err := base64.StdEncoding.DecodeString(isString(t, v)); err != nil {
				t.Errorf("byte %q: %v", v, err)
			}
		}},
		{"int32", `{"type":"integer","format":"int32","minimum":2147483000}`, integerBetween(2147483000, math.MaxInt32)},
		{"int64", `{"type":"integer","format":"int64"}`, integerBetween(math.MinInt64, math.MaxInt64)},
		{"float", `{"type":"number","format":"float","maximum":-10}`, func(t *testing.T, v any) {
			if f := isNumber(t, v); f > -10 {
				t.Errorf("value %v; want at most -10", f)
			}
		}},
		{"double", `{"type":"number","format":"double"}`, func(t *testing.T, v any) { isNumber(t, v) }},
		{"integer range", `{"type":"integer","minimum":10,"maximum":20}`, integerBetween(10, 20)},
		{"huge range stays small", `{"type":"integer","minimum":0,"maximum":1000000000000}`, integerBetween(1, 100)},
		{"exclusive bounds (3.0)", `{"type":"integer","minimum":0,"exclusiveMinimum":true,"maximum":2,"exclusiveMaximum":true}`, integerBetween(1, 1)},
		{"exclusive bounds (3.1)", `{"type":"number","exclusiveMinimum":0,"exclusiveMaximum":1}`, func(t *testing.T, v any) {
			if f := isNumber(t, v); f <= 0 || f >= 1 {
				t.Errorf("value %v; want in (0, 1)", f)
			}
		}},
		{"integer multipleOf", `{"type":"integer","multipleOf":7,"minimum":100}`, func(t *testing.T, v any) {
			if f := isNumber(t, v); math.Mod(f, 7) != 0 || f < 100 {
				t.Errorf("value %v; want a multiple of 7 from 100", f)
			}
		}},
		{"number multipleOf a cent", `{"type":"number","multipleOf":0.01,"minimum":0.5,"maximum":0.6}`, func(t *testing.T, v any) {
			if f := isNumber(t, v); f < 0.5 || f > 0.6 || len(jsonText(t, f)) > 4 {
				t.Errorf("value %v; want a round cent in [0.5, 0.6]", f)
			}
		}},
		{"boolean", `{"type":"boolean"}`, func(t *testing.T, v any) {
			if _, ok := v.(bool); !ok {
				t.Errorf("value %#v; want a boolean", v)
			}
		}},
		{"pattern code", `{"type":"string","pattern":"^[A-Z]{3}-[0-9]{4}$"}`, matches(`^[A-Z]{3}-[0-9]{4}$`)},
		{"pattern decimal", `{"type":"string","pattern":"^\\d+(\\.\\d{1,2})?$"}`, matches(`^\d+(\.\d{1,2})?$`)},
		{"pattern email-like", `{"type":"string","pattern":"[a-z0-9._%+-]+@[a-z0-9.-]+\\.[a-z]{2,}"}`, matches(`[a-z0-9._%+-]+@[a-z0-9.-]+\.[a-z]{2,}`)},
		{"pattern alternation", `{"type":"string","pattern":"^(foo|bar)+$"}`, matches(`^(foo|bar)+$`)},
		{"pattern unicode letters", `{"type":"string","pattern":"^\\p{L}+$"}`, matches(`^\p{L}+$`)},
		{"pattern non-ASCII class", `{"type":"string","pattern":"^[α-ω]{4}$"}`, matches(`^[α-ω]{4}$`)},
		{"pattern \\u escape", `{"type":"string","pattern":"^\\u0041+$"}`, matches(`^A+$`)},
		{"pattern with exact length", `{"type":"string","pattern":"^[a-z]+$","minLength":30,"maxLength":30}`,
			all(matches(`^[a-z]+$`), runesBetween(30, 30))},
		{"pattern with length range", `{"type":"string","pattern":"^[A-Za-z0-9][A-Za-z0-9._-]*$","minLength":40,"maxLength":64}`,
			all(matches(`^[A-Za-z0-9][A-Za-z0-9._-]*$`), runesBetween(40, 64))},
		{"pattern and format", `{"type":"string","format":"uuid","pattern":"^[0-9a-f-]+$"}`, matches(`^[0-9a-f]{8}-`)},
		{"enum", `{"type":"string","enum":["red","green","blue"]}`, func(t *testing.T, v any) {
			if !slices.Contains([]string{"red", "green", "blue"}, isString(t, v)) {
				t.Errorf("value %q not in enum", v)
			}
		}},
		{"enum prefers non-null", `{"type":"string","nullable":true,"enum":[null,"on"]}`, equals("on")},
		{"const", `{"const":{"k":[1,"two"]}}`, equals(map[string]any{"k": []any{1.0, "two"}})},
		{"example first", `{"type":"string","example":"Widget","default":"Gadget"}`, equals("Widget")},
		{"3.1 examples, first valid", `{"type":"string","pattern":"^[a-z]+$","examples":["Bad!","good"]}`, equals("good")},
		{"default", `{"type":"integer","default":42}`, equals(42.0)},
		{"invalid example skipped for default", `{"type":"integer","minimum":0,"example":-1,"default":5}`, equals(5.0)},
		{"nullable prefers a value", `{"type":"string","nullable":true}`, func(t *testing.T, v any) { isString(t, v) }},
		{"3.1 type array prefers non-null", `{"type":["null","integer"],"minimum":3,"maximum":3}`, equals(3.0)},
		{"array bounds and unique items", `{"type":"array","items":{"type":"string"},"minItems":3,"maxItems":5,"uniqueItems":true}`,
			func(t *testing.T, v any) {
				a := isArray(t, v)
				if len(a) < 3 || len(a) > 5 {
					t.Errorf("%d items; want 3 to 5", len(a))
				}
			}},
		{"unique items from a small enum", `{"type":"array","uniqueItems":true,"minItems":3,"items":{"enum":["a","b","c"]}}`,
			func(t *testing.T, v any) {
				a := isArray(t, v)
				if len(a) != 3 || a[0] == a[1] || a[1] == a[2] || a[0] == a[2] {
					t.Errorf("items %v; want 3 distinct", a)
				}
			}},
		{"array without items", `{"type":"array"}`, func(t *testing.T, v any) {
			if a := isArray(t, v); len(a) != 1 {
				t.Errorf("items %v; want one", a)
			}
		}},
		{"object: required, optional and writeOnly in, readOnly out", `{"type":"object","required":["id","name"],"properties":{
			"id":{"type":"string","readOnly":true},"name":{"type":"string"},
			"secret":{"type":"string","writeOnly":true},"note":{"type":"string"}}}`,
			func(t *testing.T, v any) {
				m := isObject(t, v)
				if _, has := m["id"]; has {
					t.Errorf("readOnly id sent: %v", m)
				}
				for _, k := range []string{"name", "secret", "note"} {
					if _, has := m[k]; !has {
						t.Errorf("%s missing: %v", k, m)
					}
				}
			}},
		{"map via additionalProperties", `{"type":"object","additionalProperties":{"type":"integer","minimum":7,"maximum":7}}`,
			equals(map[string]any{"conflictcheck": 7.0})},
		{"minProperties adds members", `{"type":"object","properties":{"a":{"type":"string"}},"minProperties":3}`,
			func(t *testing.T, v any) {
				if m := isObject(t, v); len(m) < 3 {
					t.Errorf("%d members; want 3", len(m))
				}
			}},
		{"maxProperties drops optional members", `{"type":"object","maxProperties":1,"required":["a"],
			"properties":{"a":{"type":"string"},"b":{"type":"string"},"c":{"type":"string"}}}`,
			func(t *testing.T, v any) {
				if m := isObject(t, v); len(m) != 1 || m["a"] == nil {
					t.Errorf("members %v; want only a", m)
				}
			}},
		{"required member not declared", `{"type":"object","required":["extra"]}`, func(t *testing.T, v any) {
			if _, has := isObject(t, v)["extra"]; !has {
				t.Errorf("extra missing: %v", v)
			}
		}},
		{"allOf merges members", `{"allOf":[
			{"type":"object","required":["a"],"properties":{"a":{"type":"string","minLength":3}}},
			{"type":"object","required":["b"],"properties":{"b":{"type":"integer","minimum":5},"a":{"maxLength":4}}}]}`,
			func(t *testing.T, v any) {
				m := isObject(t, v)
				runesBetween(3, 4)(t, m["a"])
				integerBetween(5, math.Inf(1))(t, m["b"])
			}},
		{"allOf intersects ranges", `{"allOf":[{"type":"integer","minimum":10},{"type":"number","maximum":12},{"multipleOf":11}]}`,
			equals(11.0)},
		{"oneOf makes exactly one branch valid", `{"oneOf":[
			{"type":"integer","minimum":0,"maximum":10},{"type":"integer","minimum":5,"maximum":100}]}`,
			func(t *testing.T, v any) {
				f := isNumber(t, v)
				if (f >= 0 && f <= 10) == (f >= 5 && f <= 100) {
					t.Errorf("value %v matches both or neither branch", f)
				}
			}},
		{"oneOf with shared properties", `{"type":"object","required":["kind"],"properties":{"kind":{"type":"string"}},
			"oneOf":[{"required":["a"],"properties":{"a":{"type":"integer"}}},{"required":["b"],"properties":{"b":{"type":"boolean"}}}]}`,
			func(t *testing.T, v any) {
				if m := isObject(t, v); m["kind"] == nil || (m["a"] == nil && m["b"] == nil) {
					t.Errorf("members %v; want kind and a branch", m)
				}
			}},
		{"anyOf skips an impossible branch", `{"anyOf":[{"type":"string","minLength":2,"maxLength":1},{"type":"integer","minimum":3,"maximum":3}]}`,
			equals(3.0)},
		{"not excludes values", `{"type":"integer","minimum":1,"maximum":3,"not":{"enum":[1,2]}}`, equals(3.0)},
		{"not without type picks another type", `{"not":{"type":"string"}}`, func(t *testing.T, v any) {
			if _, str := v.(string); str {
				t.Errorf("value %#v is a string", v)
			}
		}},
		{"3.1 prefixItems", `{"type":"array","prefixItems":[{"type":"string","format":"uuid"},{"type":"integer"}],"items":{"type":"boolean"}}`,
			func(t *testing.T, v any) {
				a := isArray(t, v)
				if len(a) < 2 {
					t.Fatalf("items %v; want the 2 prefix items", a)
				}
				if _, err := uuid.Parse(isString(t, a[0])); err != nil {
					t.Errorf("first item %v: %v", a[0], err)
				}
				isNumber(t, a[1])
			}},
		{"3.1 contains", `{"type":"array","items":{"type":"integer","maximum":5000},"contains":{"minimum":1000},"minContains":2}`,
			func(t *testing.T, v any) {
				n := 0
				for _, it := range isArray(t, v) {
					if isNumber(t, it) >= 1000 {
						n++
					}
				}
				if n < 2 {
					t.Errorf("items %v; want 2 from 1000", v)
				}
			}},
		{"3.1 patternProperties", `{"type":"object","patternProperties":{"^x-[a-z]+$":{"type":"string"}},"additionalProperties":false,"minProperties":1}`,
			func(t *testing.T, v any) {
				for k := range isObject(t, v) {
					if !regexp.MustCompile(`^x-[a-z]+$`).MatchString(k) {
						t.Errorf("member %q does not match the pattern", k)
					}
				}
			}},
		{"3.1 boolean subschema", `{"type":"object","required":["any"],"properties":{"any":true}}`,
			func(t *testing.T, v any) { isObject(t, v) }},
		{"empty schema", `{}`, func(t *testing.T, v any) { isString(t, v) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := schemaOf(t, tt.schema)
			for seed := range int64(8) {
				v, err := New(seed).WithRunID("test").Body(s)
				if err != nil {
					t.Fatalf("seed %d: Body: %v", seed, err)
				}
				mustValidate(t, s.Value, v)
				tt.check(t, v)
			}
		})
	}
}

func TestBodyRefusesContradictions(t *testing.T) {
	tests := []struct {
		name, schema, want string
	}{
		{"minLength above maxLength", `{"type":"string","minLength":5,"maxLength":2}`, "minLength 5 exceeds maxLength 2"},
		{"not anything", `{"type":"string","not":{}}`, "not"},
		{"empty range", `{"type":"integer","minimum":10,"maximum":5}`, "no integer in range [10, 5]"},
		{"no integer between", `{"type":"integer","minimum":0.2,"maximum":0.8}`, "no integer"},
		{"false schema", `false`, "false schema"},
		{"enum of the wrong type", `{"type":"integer","enum":["a"]}`, "no enum value"},
		{"allOf without a common type", `{"allOf":[{"type":"string"},{"type":"integer"}]}`, "allOf"},
		{"pattern too long for maxLength", `{"type":"string","pattern":"^a{5}$","maxLength":3}`, "matches no string of 5 to 3"},
		{"pattern Go cannot compile", `{"type":"string","pattern":"^(?!x)"}`, "pattern"},
		{"minItems above maxItems", `{"type":"array","minItems":3,"maxItems":1}`, "minItems 3 exceeds maxItems 1"},
		{"too few distinct items", `{"type":"array","minItems":3,"uniqueItems":true,"items":{"type":"boolean"}}`, "distinct"},
		{"closed object missing a required member", `{"type":"object","required":["x"],"additionalProperties":false}`, "additionalProperties is false"},
		{"multipleOf zero", `{"type":"number","multipleOf":0}`, "multipleOf"},
		{"huge minLength", `{"type":"string","minLength":100000}`, "minLength 100000"},
		{"const against the rest of the schema", `{"const":"abc","maxLength":2}`, "const"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := New(1).Body(schemaOf(t, tt.schema))
			if err == nil {
				t.Fatalf("Body = %s; want an error", jsonText(t, v))
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q; want it to mention %q", err, tt.want)
			}
		})
	}
	if _, err := New(1).Body(&openapi3.SchemaRef{Ref: "#/components/schemas/Missing"}); err == nil ||
		!strings.Contains(err.Error(), "Missing") {
		t.Errorf("unresolved reference: error %v; want one naming it", err)
	}
}

const recursiveDoc = `
openapi: 3.0.3
info: {title: recursion, version: "1"}
paths: {}
components:
  schemas:
    Node:
      type: object
      required: [name]
      properties:
        name: {type: string}
        children:
          type: array
          items: {$ref: '#/components/schemas/Node'}
        parent: {$ref: '#/components/schemas/Node'}
    Chain:
      type: object
      required: [next]
      properties:
        next: {$ref: '#/components/schemas/Chain'}
    Expr:
      oneOf:
        - $ref: '#/components/schemas/Sum'
        - {type: integer}
    Sum:
      type: object
      required: [left, right]
      properties:
        left: {$ref: '#/components/schemas/Expr'}
        right: {$ref: '#/components/schemas/Expr'}
    Tagged:
      allOf:
        - type: object
          properties:
            child: {$ref: '#/components/schemas/Tagged'}
        - type: object
          required: [name]
          properties:
            name: {type: string}
            child: {nullable: true}
    Pet:
      oneOf:
        - $ref: '#/components/schemas/Cat'
        - $ref: '#/components/schemas/Dog'
      discriminator:
        propertyName: petType
        mapping:
          cat: '#/components/schemas/Cat'
          dog: '#/components/schemas/Dog'
    Cat:
      type: object
      required: [petType, meows]
      properties:
        petType: {type: string}
        meows: {type: boolean}
    Dog:
      type: object
      required: [petType, barks]
      additionalProperties: false
      properties:
        petType: {type: string}
        barks: {type: integer, minimum: 1}
`

func loadDoc(t testing.TB, text string) *openapi3.T {
	t.Helper()
	doc, err := openapi3.NewLoader().LoadFromData([]byte(text))
	if err != nil {
		t.Fatalf("load test document: %v", err)
	}
	return doc
}

// depthOf returns how deeply objects and arrays nest in v.
func depthOf(v any) int {
	d := 0
	switch x := v.(type) {
	case map[string]any:
		for _, e := range x {
			d = max(d, depthOf(e))
		}
		return d + 1
	case []any:
		for _, e := range x {
			d = max(d, depthOf(e))
		}
		return d + 1
	}
	return 0
}

func TestRecursiveSchemas(t *testing.T) {
	doc := loadDoc(t, recursiveDoc)
	schemas := doc.Components.Schemas
	for _, name := range []string{"Node", "Expr", "Tagged"} {
		t.Run(name+" terminates", func(t *testing.T) {
			v, err := New(3).Body(schemas[name])
			if err != nil {
				t.Fatalf("Body: %v", err)
			}
			mustValidate(t, schemas[name].Value, v)
			if d := depthOf(v); d > softDepth+2 {
				t.Errorf("value nests %d levels: %s", d, jsonText(t, v))
			}
		})
	}
	t.Run("Node includes optional recursion near the top", func(t *testing.T) {
		v, err := New(3).Body(schemas["Node"])
		if err != nil {
			t.Fatalf("Body: %v", err)
		}
		if _, has := isObject(t, v)["children"]; !has {
			t.Errorf("children missing at the top: %s", jsonText(t, v))
		}
	})
	t.Run("required recursion is an error", func(t *testing.T) {
		_, err := New(3).Body(schemas["Chain"])
		if err == nil || !strings.Contains(err.Error(), "deeper than") {
			t.Errorf("error %v; want one about nesting", err)
		}
	})
	t.Run("discriminator names the branch", func(t *testing.T) {
		for seed := range int64(4) {
			v, err := New(seed).Body(schemas["Pet"])
			if err != nil {
				t.Fatalf("Body: %v", err)
			}
			mustValidate(t, schemas["Pet"].Value, v)
			m := isObject(t, v)
			_, meows := m["meows"]
			if want := map[bool]string{true: "cat", false: "dog"}[meows]; m["petType"] != want {
				t.Errorf("petType = %v; want %s for %s", m["petType"], want, jsonText(t, v))
			}
		}
	})
}

func TestReferenceBodiesAndParams(t *testing.T) {
	doc := loadReference(t)
	create := doc.Paths.Find("/items").Post
	mt := create.RequestBody.Value.Content.Get("application/json")
	itemCreate := doc.Components.Schemas["ItemCreate"].Value

	t.Run("createItem example, with a unique sku", func(t *testing.T) {
		g := New(1).WithRunID("run-1").WithOptions(Options{Unique: []string{"/sku"}, Scope: "duplicate-create createItem"})
		v, err := g.MediaBody(mt)
		if err != nil {
			t.Fatalf("MediaBody: %v", err)
		}
		mustValidate(t, itemCreate, v)
		m := isObject(t, v)
		if m["name"] != "Widget" || m["price"] != 1250.0 {
			t.Errorf("body %s; want the example's name and price", jsonText(t, v))
		}
		if sku := isString(t, m["sku"]); !strings.HasPrefix(sku, "SKU-1-") || sku == "SKU-1-" {
			t.Errorf("sku %q; want the example's with a unique suffix", sku)
		}
	})
	t.Run("createItem synthesised", func(t *testing.T) {
		for seed := range int64(16) {
			v, err := New(seed).WithOptions(Options{IgnoreExamples: true}).MediaBody(mt)
			if err != nil {
				t.Fatalf("MediaBody: %v", err)
			}
			mustValidate(t, itemCreate, v)
			m := isObject(t, v)
			for _, k := range []string{"sku", "name", "price", "stock"} {
				if _, has := m[k]; !has {
					t.Errorf("%s missing from %s", k, jsonText(t, v))
				}
			}
		}
	})
	t.Run("Item leaves readOnly id and version out", func(t *testing.T) {
		item := doc.Components.Schemas["Item"]
		v, err := New(1).Body(item)
		if err != nil {
			t.Fatalf("Body: %v", err)
		}
		mustValidate(t, item.Value, v)
		if m := isObject(t, v); m["id"] != nil || m["version"] != nil {
			t.Errorf("body %s has readOnly members", jsonText(t, v))
		}
	})
	t.Run("a resource example serves as a request without its readOnly members", func(t *testing.T) {
		mt := &openapi3.MediaType{Schema: doc.Components.Schemas["Item"], Example: map[string]any{
			"id": "3f2b8c1e-4d5a-4e6f-8a7b-9c0d1e2f3a4b", "version": 3, "sku": "SKU-9", "name": "Bolt", "price": 5, "stock": 1}}
		v, err := New(1).MediaBody(mt)
		if err != nil {
			t.Fatalf("MediaBody: %v", err)
		}
		want := map[string]any{"sku": "SKU-9", "name": "Bolt", "price": 5.0, "stock": 1.0}
		if !jsonEqual(v, want) {
			t.Errorf("body %s; want %s", jsonText(t, v), jsonText(t, want))
		}
	})
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			if op.RequestBody != nil {
				for _, ignore := range []bool{false, true} {
					mt := op.RequestBody.Value.Content.Get("application/json")
					v, err := New(1).WithOptions(Options{IgnoreExamples: ignore}).MediaBody(mt)
					if err != nil {
						t.Errorf("%s %s body (ignore examples %v): %v", method, path, ignore, err)
						continue
					}
					mustValidate(t, mt.Schema.Value, v)
				}
			}
			for _, p := range append(item.Parameters, op.Parameters...) {
				for _, ignore := range []bool{false, true} {
					text, err := New(1).WithOptions(Options{IgnoreExamples: ignore}).Param(p.Value)
					if err != nil || (p.Value.In == "path" && text == "") {
						t.Errorf("%s %s parameter %s = %q, %v", method, path, p.Value.Name, text, err)
					}
				}
			}
		}
	}
}

func TestParam(t *testing.T) {
	idem := loadReference(t).Components.Parameters["IdempotencyKey"].Value
	explode := true
	tests := []struct {
		name  string
		param *openapi3.Parameter
		opts  Options
		check func(*testing.T, string)
	}{
		{"path uuid", &openapi3.Parameter{Name: "id", In: "path", Required: true, Schema: schemaOf(t, `{"type":"string","format":"uuid"}`)},
			Options{}, func(t *testing.T, s string) {
				if _, err := uuid.Parse(s); err != nil {
					t.Errorf("%q: %v", s, err)
				}
			}},
		{"query integer default", &openapi3.Parameter{Name: "limit", In: "query", Schema: schemaOf(t, `{"type":"integer","default":100}`)},
			Options{}, func(t *testing.T, s string) {
				if s != "100" {
					t.Errorf("%q; want 100", s)
				}
			}},
		{"header idempotency key, unique", idem, Options{Unique: []string{""}, Scope: "idem", IgnoreExamples: true},
			func(t *testing.T, s string) {
				if !regexp.MustCompile(`^[!-~]{1,255}$`).MatchString(s) {
					t.Errorf("%q is not a valid Idempotency-Key", s)
				}
			}},
		{"header example", idem, Options{}, func(t *testing.T, s string) {
			if s != "2f1e0d9c-8b7a-4654-9321-0fedcba98765" {
				t.Errorf("%q; want the example", s)
			}
		}},
		{"header with an unconstrained schema avoids spaces", &openapi3.Parameter{Name: "X-Note", In: "header",
			Schema: schemaOf(t, `{"type":"string","pattern":"^[a-z ]{3,8}$"}`)}, Options{}, func(t *testing.T, s string) {
			if s != strings.TrimSpace(s) || len(s) < 3 {
				t.Errorf("%q; want a header-safe value", s)
			}
		}},
		{"query array, form exploded", &openapi3.Parameter{Name: "tag", In: "query", Explode: &explode,
			Schema: schemaOf(t, `{"type":"array","minItems":2,"maxItems":2,"items":{"type":"integer","minimum":1,"maximum":1}}`)},
			Options{}, func(t *testing.T, s string) {
				if s != "1,1" {
					t.Errorf("%q; want 1,1", s)
				}
			}},
		{"content parameter is JSON", &openapi3.Parameter{Name: "filter", In: "query", Content: openapi3.Content{
			"application/json": &openapi3.MediaType{Schema: schemaOf(t, `{"type":"object","required":["n"],"properties":{"n":{"type":"integer","minimum":2,"maximum":2}}}`)}}},
			Options{}, func(t *testing.T, s string) {
				if s != `{"n":2}` {
					t.Errorf("%q; want {\"n\":2}", s)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := New(1).WithRunID("param").WithOptions(tt.opts).Param(tt.param)
			if err != nil {
				t.Fatalf("Param: %v", err)
			}
			tt.check(t, s)
		})
	}
}

func TestFormatParam(t *testing.T) {
	yes, no := true, false
	arr := []any{"a", 2.0, true}
	obj := map[string]any{"r": 100.0, "g": "x"}
	tests := []struct {
		in, style string
		explode   *bool
		v         any
		want      string
	}{
		{"path", "", nil, 12.5, "12.5"},
		{"path", "", nil, 1e15, "1000000000000000"},
		{"path", "", nil, arr, "a,2,true"},
		{"path", "label", &no, arr, ".a,2,true"},
		{"path", "label", &yes, arr, ".a.2.true"},
		{"path", "matrix", &no, arr, ";p=a,2,true"},
		{"path", "matrix", &yes, arr, ";p=a;p=2;p=true"},
		{"path", "matrix", nil, "v", ";p=v"},
		{"query", "", nil, arr, "a,2,true"},
		{"query", "spaceDelimited", &no, arr, "a 2 true"},
		{"query", "pipeDelimited", &no, arr, "a|2|true"},
		{"header", "", nil, obj, "g,x,r,100"},
		{"header", "", &yes, obj, "g=x,r=100"},
		{"query", "", nil, nil, ""},
	}
	for _, tt := range tests {
		p := &openapi3.Parameter{Name: "p", In: tt.in, Style: tt.style, Explode: tt.explode}
		got, err := FormatParam(p, tt.v)
		if err != nil || got != tt.want {
			t.Errorf("FormatParam(%s %s explode=%v, %v) = %q, %v; want %q", tt.in, tt.style, tt.explode, tt.v, got, err, tt.want)
		}
	}
	if _, err := FormatParam(&openapi3.Parameter{Name: "p", In: "query"}, []any{[]any{"nested"}}); err == nil {
		t.Error("nested array: want an error")
	}
}

// complexSchema exercises most of the generator, for determinism and benchmarks.
const complexSchema = `{"type":"object","required":["id","code","tags","when"],"properties":{
	"id":{"type":"string","format":"uuid"},"code":{"type":"string","pattern":"^[A-Z]{3}-[0-9]{4}$"},
	"tags":{"type":"array","minItems":2,"uniqueItems":true,"items":{"type":"string","maxLength":12}},
	"when":{"type":"string","format":"date-time"},"count":{"type":"integer","minimum":0},
	"price":{"type":"number","multipleOf":0.01,"minimum":1},"mail":{"type":"string","format":"email"},
	"flag":{"type":"boolean"},"nested":{"type":"object","additionalProperties":{"type":"string"}},
	"choice":{"oneOf":[{"type":"string","enum":["x","y"]},{"type":"integer"}]}}}`

func TestDeterminism(t *testing.T) {
	s := schemaOf(t, complexSchema)
	sequence := func(g *Generator) string {
		var out []string
		for range 5 {
			v, err := g.WithOptions(Options{IgnoreExamples: true}).Body(s)
			if err != nil {
				t.Fatalf("Body: %v", err)
			}
			out = append(out, jsonText(t, v))
		}
		return strings.Join(out, "\n")
	}
	a, b := sequence(New(7).WithRunID("r")), sequence(New(7).WithRunID("r"))
	if a != b {
		t.Errorf("same seed and RunID, different values:\n%s\n---\n%s", a, b)
	}
	if c := sequence(New(8).WithRunID("r")); c == a {
		t.Errorf("seeds 7 and 8 made the same values:\n%s", a)
	}
	if lines := strings.Split(a, "\n"); lines[0] == lines[1] {
		t.Errorf("successive calls made the same value %s", lines[0])
	}

	// A fork's stream does not depend on how many values its parent made.
	g1, g2 := New(7).WithRunID("r"), New(7).WithRunID("r")
	sequence(g2)
	if f1, f2 := sequence(g1.Fork("racer-1")), sequence(g2.Fork("racer-1")); f1 != f2 {
		t.Errorf("forks of one name differ:\n%s\n---\n%s", f1, f2)
	}
	if f1, f3 := sequence(g1.Fork("racer-1")), sequence(g1.Fork("racer-2")); f1 == f3 {
		t.Error("forks of different names made the same values")
	}
}

func TestConcurrentUse(t *testing.T) {
	s := schemaOf(t, complexSchema)
	g := New(1).WithRunID("concurrent")
	errs := make(chan error, 16)
	for i := range 8 {
		go func() {
			_, err := g.Body(s)
			errs <- err
		}()
		go func() {
			_, err := g.Fork(strconv.Itoa(i)).Unique(s, "slot")
			errs <- err
		}()
	}
	for range 16 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}

func TestUnique(t *testing.T) {
	doc := loadReference(t)
	schemas := map[string]*openapi3.SchemaRef{
		"plain string":   schemaOf(t, `{"type":"string"}`),
		"sku pattern":    doc.Components.Schemas["Sku"],
		"code pattern":   schemaOf(t, `{"type":"string","pattern":"^[A-Z]{3}-[0-9]{4}$"}`),
		"alternation":    schemaOf(t, `{"type":"string","pattern":"^(foo|bar)+$"}`),
		"short string":   schemaOf(t, `{"type":"string","maxLength":4}`),
		"long string":    schemaOf(t, `{"type":"string","minLength":50}`),
		"uuid":           schemaOf(t, `{"type":"string","format":"uuid"}`),
		"email":          schemaOf(t, `{"type":"string","format":"email"}`),
		"date-time":      schemaOf(t, `{"type":"string","format":"date-time"}`),
		"ipv4":           schemaOf(t, `{"type":"string","format":"ipv4"}`),
		"ipv6":           schemaOf(t, `{"type":"string","format":"ipv6"}`),
		"integer":        schemaOf(t, `{"type":"integer","minimum":0}`),
		"multiple of 5":  schemaOf(t, `{"type":"integer","multipleOf":5,"maximum":-100}`),
		"whole body":     doc.Components.Schemas["ItemCreate"],
		"array of codes": schemaOf(t, `{"type":"array","items":{"type":"string","pattern":"^[a-z]{8}$"}}`),
	}
	for name, s := range schemas {
		t.Run(name, func(t *testing.T) {
			get := func(seed int64, runID, slot string) string {
				t.Helper()
				v, err := New(seed).WithRunID(runID).Unique(s, slot)
				if err != nil {
					t.Fatalf("Unique(%s, %s): %v", runID, slot, err)
				}
				mustValidate(t, s.Value, v)
				return jsonText(t, v)
			}
			a := get(1, "run-a", "slot")
			if b := get(2, "run-a", "slot"); a != b {
				t.Errorf("one run and slot gave %s and %s", a, b)
			}
			seen := map[string]string{a: "run-a"}
			for _, run := range []string{"run-b", "run-c", "run-d"} {
				v := get(1, run, "slot")
				if prev, dup := seen[v]; dup {
					t.Errorf("runs %s and %s both gave %s", prev, run, v)
				}
				seen[v] = run
			}
			if c := get(1, "run-a", "other slot"); c == a {
				t.Errorf("two slots gave %s", a)
			}
		})
	}
	for name, text := range map[string]string{
		"enum":        `{"type":"string","enum":["a","b"]}`,
		"const":       `{"const":"a"}`,
		"boolean":     `{"type":"boolean"}`,
		"small range": `{"type":"integer","minimum":1,"maximum":1000}`,
		"two strings": `{"type":"string","pattern":"^(a|b)$"}`,
	} {
		t.Run(name+" cannot be unique", func(t *testing.T) {
			if v, err := New(1).Unique(schemaOf(t, text), "slot"); err == nil {
				t.Errorf("Unique = %s; want an error", jsonText(t, v))
			}
		})
	}
}

func TestOptionsUniqueWithinScenario(t *testing.T) {
	s := loadReference(t).Components.Schemas["ItemCreate"]
	body := func(runID, scope, racer string) map[string]any {
		t.Helper()
		g := New(1).WithRunID(runID).Fork(racer).WithOptions(Options{Unique: []string{"/sku"}, Scope: scope, IgnoreExamples: true})
		v, err := g.Body(s)
		if err != nil {
			t.Fatalf("Body: %v", err)
		}
		return isObject(t, v)
	}
	r1, r2 := body("run", "dup createItem", "racer-1"), body("run", "dup createItem", "racer-2")
	if r1["sku"] != r2["sku"] {
		t.Errorf("racers of one scenario got skus %v and %v", r1["sku"], r2["sku"])
	}
	if jsonEqual(r1, r2) {
		t.Errorf("racers got identical bodies %v; want other members to differ", r1)
	}
	if other := body("run", "another scenario", "racer-1"); other["sku"] == r1["sku"] {
		t.Errorf("two scenarios share sku %v", r1["sku"])
	}
	if next := body("next run", "dup createItem", "racer-1"); next["sku"] == r1["sku"] {
		t.Errorf("two runs share sku %v", r1["sku"])
	}
	if _, err := New(1).WithOptions(Options{Unique: []string{"/nope"}}).Body(s); err == nil {
		t.Error("a Unique pointer outside the schema: want an error")
	}
}

func TestPatternGeneration(t *testing.T) {
	tests := []struct {
		pattern string
		lo, hi  int
	}{
		{`^[A-Z]{3}-[0-9]{4}$`, 0, 100},
		{`^\d+(\.\d{1,2})?$`, 0, 100},
		{`[a-z0-9._%+-]+@[a-z0-9.-]+\.[a-z]{2,}`, 0, 100},
		{`^(foo|bar)+$`, 9, 9},
		{`\p{L}+`, 1, 100},
		{`^\p{Greek}{3,5}$`, 0, 100},
		{`^(?i)abc[d-f]$`, 0, 100},
		{`^(/([^~/]|~[01])*)*$`, 0, 20},
		{`^"v[1-9][0-9]*"$`, 0, 100},
		{`^[^\x00-\x7f]{2}$`, 0, 100},
		{`(a|b|)*c?$`, 0, 5},
		{`\bword\b`, 0, 100},
		{`^(x{2,3}){2}$`, 5, 5},
		{`^$`, 0, 0},
		{`.{10,}`, 12, 20},
	}
	for _, tt := range tests {
		t.Run(tt.pattern, func(t *testing.T) {
			p, err := compilePattern(tt.pattern)
			if err != nil {
				t.Fatalf("compile: %v", err)
			}
			for seed := range 20 {
				rng := newRand("test", string(rune(seed)))
				s, _, err := p.generate(rng, tt.lo, tt.hi)
				if err != nil {
					t.Fatalf("generate: %v", err)
				}
				if !p.re.MatchString(s) {
					t.Errorf("%q does not match", s)
				}
				if n := utf8.RuneCountInString(s); n < tt.lo || n > tt.hi {
					t.Errorf("%q has %d runes; want %d to %d", s, n, tt.lo, tt.hi)
				}
			}
		})
	}
	for _, bad := range []string{`[^\x00-\x{10FFFF}]`, `a\z b`} {
		p, err := compilePattern(bad)
		if err != nil {
			continue
		}
		if s, _, err := p.generate(newRand("bad"), 0, 10); err == nil && p.re.MatchString(s) {
			t.Errorf("pattern %q: generated match %q of a pattern that matches nothing", bad, s)
		}
	}
}

func BenchmarkBody(b *testing.B) {
	s := schemaOf(b, complexSchema)
	item := loadReference(b).Components.Schemas["ItemCreate"]
	g := New(1).WithRunID("bench").WithOptions(Options{IgnoreExamples: true})
	b.Run("complex", func(b *testing.B) {
		for b.Loop() {
			if _, err := g.Body(s); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("ItemCreate", func(b *testing.B) {
		for b.Loop() {
			if _, err := g.Body(item); err != nil {
				b.Fatal(err)
			}
		}
	})
}
