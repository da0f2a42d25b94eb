package synth

import (
	"encoding/json"
	"regexp"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
)

// callBound is a generous bound on one synthesis call: far above what any call takes, far
// below a hang.
const callBound = 5 * time.Second

// FuzzPattern feeds arbitrary regular expressions to string synthesis: when the pattern
// compiles, generation either fails or makes a string the pattern matches, without panicking
// or hanging.
func FuzzPattern(f *testing.F) {
	for _, p := range []string{
		`^[A-Z]{3}-[0-9]{4}$`, `^\d+(\.\d{1,2})?$`, `[a-z0-9._%+-]+@[a-z0-9.-]+\.[a-z]{2,}`,
		`^(foo|bar)+$`, `\p{L}+`, `^(/([^~/]|~[01])*)*$`, `(a|b|)*c?$`, `\bx\b`, `^$`, `a^b`,
		`((a{2,5}){3}|b+)*`, `[^\x00-\x{10FFFF}]`, `(?i)ab[^c]`, `\u00e9+`, `.{1000}`,
	} {
		f.Add(p, uint16(0), uint16(20), int64(1))
	}
	f.Fuzz(func(t *testing.T, pattern string, minLength, maxLength uint16, seed int64) {
		if _, err := regexp.Compile(codepointEscape.ReplaceAllString(pattern, `\x{${code}}`)); err != nil {
			return
		}
		maxL := uint64(maxLength)
		ref := &openapi3.SchemaRef{Value: &openapi3.Schema{
			Type: &openapi3.Types{"string"}, Pattern: pattern, MinLength: uint64(minLength), MaxLength: &maxL,
		}}
		g := New(seed).WithRunID("fuzz")
		for _, synthesise := range []func() (any, error){
			func() (any, error) { return g.Body(ref) },
			func() (any, error) { return g.Unique(ref, "slot") },
		} {
			start := time.Now()
			v, err := synthesise()
			if d := time.Since(start); d > callBound {
				t.Fatalf("pattern %q took %v", pattern, d)
			}
			if err != nil {
				continue
			}
			s, ok := v.(string)
			if !ok {
				t.Fatalf("pattern %q: value %#v is not a string", pattern, v)
			}
			if p, err := compilePattern(pattern); err != nil || !p.re.MatchString(s) {
				t.Fatalf("pattern %q: %q does not match (%v)", pattern, s, err)
			}
		}
	})
}

// FuzzSchema feeds arbitrary JSON schemas to Body: it never panics or hangs, and whatever it
// returns validates against the schema and survives a JSON round trip.
func FuzzSchema(f *testing.F) {
	for _, s := range []string{
		`{"type":"string","minLength":3,"maxLength":5,"pattern":"^[a-z]+$"}`,
		`{"type":"object","required":["a"],"properties":{"a":{"type":"integer","minimum":1}},"additionalProperties":false}`,
		`{"type":"array","items":{"type":"string","format":"uuid"},"minItems":2,"uniqueItems":true}`,
		`{"allOf":[{"type":"object","properties":{"x":{"type":"string"}}},{"required":["x"]}]}`,
		`{"oneOf":[{"type":"integer"},{"type":"number","multipleOf":0.5}]}`,
		`{"anyOf":[{"type":"null"},{"type":"boolean"}],"not":{"const":true}}`,
		`{"type":["string","null"],"enum":["a",null]}`,
		`{"type":"object","patternProperties":{"^k":{"type":"number"}},"minProperties":2}`,
		`{"type":"number","exclusiveMinimum":0,"exclusiveMaximum":0.001}`,
		`{"type":"string","format":"email","maxLength":6}`,
		`{"prefixItems":[{"const":1}],"contains":{"type":"string"},"maxItems":3}`,
		`{"properties":{"a":null}}`,
		`{"items":{"$ref":"#/nowhere"}}`,
	} {
		f.Add([]byte(s), int64(1))
	}
	f.Fuzz(func(t *testing.T, data []byte, seed int64) {
		var s openapi3.Schema
		if err := json.Unmarshal(data, &s); err != nil {
			return
		}
		ref := &openapi3.SchemaRef{Value: &s}
		g := New(seed).WithRunID("fuzz")
		start := time.Now()
		v, err := g.Body(ref)
		if d := time.Since(start); d > callBound {
			t.Fatalf("schema %s took %v", data, d)
		}
		_, _ = g.Unique(ref, "slot")
		if err != nil {
			return
		}
		mustValidate(t, &s, v)
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatalf("schema %s: value %#v does not encode: %v", data, v, err)
		}
		var back any
		if err := json.Unmarshal(b, &back); err != nil || !jsonEqual(back, v) {
			t.Fatalf("schema %s: value %s does not round-trip (%v)", data, b, err)
		}
	})
}
