// Package synth makes request payloads from OpenAPI schemas: bodies and parameter values that
// the API accepts, deterministic for a seed, with values that are unique per run where a
// conflict scenario needs a fresh key (a sku, an idempotency key).
package synth

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"slices"
	"strings"
	"sync"

	"github.com/getkin/kin-openapi/openapi3"
)

// Options tune what a Generator makes; the zero value makes realistic values, examples first.
type Options struct {
	// Unique lists JSON pointers into the value (e.g. the duplicate-create key "/sku") whose
	// values must differ from every other run but be equal within a scenario: each is made by
	// Unique with the slot Scope+pointer, so equal Scopes give equal values in one run.
	Unique []string
	// Scope names the scenario the Unique values belong to; racers of one scenario share it.
	Scope string
	// IgnoreExamples synthesises from constraints instead of using example and default
	// values, so that generators with different seeds (Fork) make different values.
	IgnoreExamples bool
}

// Generator synthesises request values, the same ones for the same seed, RunID and sequence of
// calls (Fork gives order-independent streams); it is safe for concurrent use.
type Generator struct {
	seed   int64
	runID  string
	path   string
	opts   Options
	stream *stream
}

// stream is the random source a Generator and its WithOptions copies share.
type stream struct {
	mu  sync.Mutex
	rng *mrand.Rand
}

// processRunID is the RunID of generators that were not given one: random, once per process.
var processRunID = sync.OnceValue(func() string {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		// crypto/rand.Read never fails on supported platforms; keep a usable fallback anyway.
		binary.LittleEndian.PutUint64(b[:], mrand.Uint64())
	}
	return hex.EncodeToString(b[:])
})

// New returns a Generator for seed with the process's random RunID.
func New(seed int64) *Generator {
	return newGenerator(seed, processRunID(), "", Options{})
}

func newGenerator(seed int64, runID, path string, opts Options) *Generator {
	g := &Generator{seed: seed, runID: runID, path: path, opts: opts}
	g.stream = &stream{rng: newRand("stream", fmt.Sprint(seed), runID, path)}
	return g
}

// WithRunID returns a Generator like g (with a fresh stream) whose Unique values derive from
// runID, so that tests can reproduce them.
func (g *Generator) WithRunID(runID string) *Generator {
	return newGenerator(g.seed, runID, g.path, g.opts)
}

// WithOptions returns a Generator that shares g's stream and RunID and makes values with o.
func (g *Generator) WithOptions(o Options) *Generator {
	c := *g
	c.opts = o
	c.opts.Unique = slices.Clone(o.Unique)
	return &c
}

// Fork returns a Generator whose stream depends only on g's seed, RunID and name, e.g. one per
// racer, so that racers' values differ reproducibly whatever order they are made in.
func (g *Generator) Fork(name string) *Generator {
	return newGenerator(g.seed, g.runID, g.path+"/"+name, g.opts)
}

// RunID returns the identifier Unique values are derived from.
func (g *Generator) RunID() string { return g.runID }

// newRand returns a PCG source seeded by a hash of parts.
func newRand(parts ...string) *mrand.Rand {
	h := sha256.Sum256([]byte(strings.Join(parts, "\x00")))
	return mrand.New(mrand.NewPCG(binary.LittleEndian.Uint64(h[:8]), binary.LittleEndian.Uint64(h[8:16])))
}

// Value synthesises a request value for s (readOnly properties left out, writeOnly ones in,
// each part checked against its own schema) made of plain JSON values (map[string]any, []any,
// string, float64, bool, nil) that survive a JSON round trip, or says why it cannot.
func (g *Generator) Value(s *openapi3.SchemaRef) (any, error) {
	if err := checkSchema(s); err != nil {
		return nil, err
	}
	g.stream.mu.Lock()
	w := g.walker(g.stream.rng, false, "")
	v, err := w.gen(s.Value, "")
	g.stream.mu.Unlock()
	if err != nil {
		return nil, err
	}
	return g.applyUnique(s.Value, v, false)
}

// Body is Value plus validation of the whole value as kin-openapi validates a request (with
// JSON Schema 2020-12 when s uses OpenAPI 3.1 keywords), its error saying why no valid value
// could be made.
func (g *Generator) Body(s *openapi3.SchemaRef) (any, error) {
	v, err := g.Value(s)
	if err != nil {
		return nil, err
	}
	if err := validate(s.Value, v, true); err != nil {
		return nil, fmt.Errorf("synthesised value is invalid: %w", concise(err))
	}
	return v, nil
}

// MediaBody returns a request body for mt, preferring its example, then its first valid named
// example by name, then Body(mt.Schema), with the options' Unique pointers applied to the pick.
func (g *Generator) MediaBody(mt *openapi3.MediaType) (any, error) {
	if mt == nil {
		return nil, errors.New("no media type")
	}
	var schema *openapi3.Schema
	if mt.Schema != nil {
		if err := checkSchema(mt.Schema); err != nil {
			return nil, err
		}
		schema = mt.Schema.Value
	}
	if !g.opts.IgnoreExamples {
		for _, ex := range mediaExamples(mt.Example, mt.Examples) {
			v, err := jsonCopy(ex)
			if err != nil {
				continue
			}
			if schema != nil {
				v = withoutReadOnly(schema, v)
			}
			if schema == nil {
				if len(g.opts.Unique) > 0 {
					return nil, errors.New("unique pointers need a schema")
				}
				return v, nil
			}
			if validate(schema, v, false) != nil {
				continue
			}
			if v, err = g.applyUnique(schema, v, true); err != nil {
				return nil, err
			}
			if err := validate(schema, v, true); err != nil {
				return nil, fmt.Errorf("example with unique values is invalid: %w", concise(err))
			}
			return v, nil
		}
	}
	if mt.Schema == nil {
		return nil, errors.New("no schema and no valid example")
	}
	return g.Body(mt.Schema)
}

// mediaExamples lists example first, then the values of examples by sorted name.
func mediaExamples(example any, examples openapi3.Examples) []any {
	var out []any
	if example != nil {
		out = append(out, example)
	}
	names := make([]string, 0, len(examples))
	for name := range examples {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		if ref := examples[name]; ref != nil && ref.Value != nil && ref.Value.Value != nil {
			out = append(out, ref.Value.Value)
		}
	}
	return out
}

// Unique returns a value for s that differs from run to run and is equal for equal slots within
// a run whatever the seed, respecting s's pattern, format, length and range (in an object or
// array, every string it can is made unique, else numbers), or an error when s admits too few
// values (an enum, a const, a boolean, a narrow range or pattern).
func (g *Generator) Unique(s *openapi3.SchemaRef, slot string) (any, error) {
	if err := checkSchema(s); err != nil {
		return nil, err
	}
	return g.unique(s.Value, slot, "")
}

// unique makes a unique value for s; hint, when not empty, is a realistic value to build on.
func (g *Generator) unique(s *openapi3.Schema, slot, hint string) (any, error) {
	var why error
	for _, numbers := range []bool{false, true} {
		w := g.walker(newRand("unique", g.runID, slot), true, slot)
		w.uniq.numbers = numbers
		w.uniq.hint = hint
		v, err := w.gen(s, "")
		if err != nil {
			return nil, fmt.Errorf("unique value for %q: %w", slot, err)
		}
		if w.uniq.made > 0 {
			if err := validate(s, v, true); err != nil {
				return nil, fmt.Errorf("unique value for %q is invalid: %w", slot, concise(err))
			}
			return v, nil
		}
		if w.uniq.why != nil {
			why = w.uniq.why // the second pass's reason covers numbers too
		}
	}
	if why == nil {
		why = errors.New("the schema admits no value that can vary")
	}
	return nil, fmt.Errorf("unique value for %q: %w", slot, why)
}

// applyUnique replaces the value at each of the options' Unique pointers by a unique one.
// When v is an example (the same for every racer), a string it holds there is kept as the
// unique value's prefix.
func (g *Generator) applyUnique(s *openapi3.Schema, v any, example bool) (any, error) {
	for _, ptr := range g.opts.Unique {
		tokens, err := parsePointer(ptr)
		if err != nil {
			return nil, err
		}
		sub := schemaAt(s, tokens, map[*openapi3.Schema]bool{})
		if sub == nil {
			return nil, fmt.Errorf("unique %s: the schema has no member there", ptr)
		}
		hint := ""
		if cur, ok := valueAt(v, tokens); ok && example {
			if str, ok := cur.(string); ok {
				hint = str
			}
		}
		u, err := g.unique(sub, g.opts.Scope+ptr, hint)
		if err != nil {
			return nil, err
		}
		if v, err = setAt(v, tokens, u); err != nil {
			return nil, fmt.Errorf("unique %s: %w", ptr, err)
		}
	}
	return v, nil
}

// walker returns a walker drawing from rng; unique walkers make unique leaves for slot.
func (g *Generator) walker(rng *mrand.Rand, unique bool, slot string) *walker {
	w := &walker{rng: rng, ignoreExamples: g.opts.IgnoreExamples}
	if unique {
		w.uniq = &uniqueState{runID: g.runID, slot: slot}
	}
	return w
}

// jsonCopy returns v as encoding/json decodes it into any: a deep copy in canonical types.
func jsonCopy(v any) (any, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode value: %w", err)
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, fmt.Errorf("decode value: %w", err)
	}
	return out, nil
}
