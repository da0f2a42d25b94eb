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

	"github.com/conflictcheck/conflictcheck/internal/runtimeexpr"
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

// newRand returns a PCG source seeded by a hash of parts.
func newRand(parts ...string) *mrand.Rand {
	h := sha256.Sum256([]byte(strings.Join(parts, "\x00")))
	return mrand.New(mrand.NewPCG(binary.LittleEndian.Uint64(h[:8]), binary.LittleEndian.Uint64(h[8:16])))
}

// Body synthesises a request value for s (readOnly properties left out, writeOnly ones in)
// made of plain JSON values (map[string]any, []any, string, float64, bool, nil) that survive a
// JSON round trip and that kin-openapi accepts as a request (validating with JSON Schema
// 2020-12 when s uses OpenAPI 3.1 keywords), or says why no valid value could be made.
func (g *Generator) Body(s *openapi3.SchemaRef) (any, error) {
	graph, err := analyse(s)
	if err != nil {
		return nil, err
	}
	return g.body(graph, s.Value)
}

// body is Body for s, a schema of graph.
func (g *Generator) body(graph *schemaGraph, s *openapi3.Schema) (any, error) {
	g.stream.mu.Lock()
	v, err := g.walker(graph, g.stream.rng, nil).gen(s, "")
	g.stream.mu.Unlock()
	if err != nil {
		return nil, err
	}
	if v, err = g.applyUnique(graph, s, v, false); err != nil {
		return nil, err
	}
	if err := g.uniqueValid(graph, s, v); err != nil {
		return nil, fmt.Errorf("synthesised value is invalid: %w", err)
	}
	return v, nil
}

// MediaBody returns a request body for mt, preferring its example, then its first valid named
// example by name, then Body(mt.Schema), with the options' Unique pointers applied to the pick.
func (g *Generator) MediaBody(mt *openapi3.MediaType) (any, error) {
	if mt == nil {
		return nil, errors.New("no media type")
	}
	var graph *schemaGraph
	if mt.Schema != nil {
		var err error
		if graph, err = analyse(mt.Schema); err != nil {
			return nil, err
		}
	}
	if !g.opts.IgnoreExamples {
		for _, ex := range mediaExamples(mt.Example, mt.Examples) {
			v, err := jsonCopy(ex)
			if err != nil {
				continue
			}
			if graph == nil {
				if len(g.opts.Unique) > 0 {
					return nil, errors.New("unique pointers need a schema")
				}
				return v, nil
			}
			schema := mt.Schema.Value
			if v = withoutReadOnly(schema, v); graph.validate(schema, v, false) != nil {
				continue
			}
			if v, err = g.applyUnique(graph, schema, v, true); err != nil {
				return nil, err
			}
			if err := g.uniqueValid(graph, schema, v); err != nil {
				return nil, fmt.Errorf("example with unique values is invalid: %w", err)
			}
			return v, nil
		}
	}
	if graph == nil {
		return nil, errors.New("no schema and no valid example")
	}
	return g.body(graph, mt.Schema.Value)
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
	graph, err := analyse(s)
	if err != nil {
		return nil, err
	}
	return g.unique(graph, s.Value, slot, "")
}

// unique makes a unique value for s, a schema of graph; hint, when not empty, is a realistic
// value to build on. The walker checks the value against s, as it does every value it makes.
func (g *Generator) unique(graph *schemaGraph, s *openapi3.Schema, slot, hint string) (any, error) {
	var why error
	for _, numbers := range []bool{false, true} {
		w := g.walker(graph, newRand("unique", g.runID, slot), &uniqueState{runID: g.runID, slot: slot, numbers: numbers, hint: hint})
		v, err := w.gen(s, "")
		if err != nil {
			return nil, fmt.Errorf("unique value for %q: %w", slot, err)
		}
		if w.uniq.made > 0 {
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
func (g *Generator) applyUnique(graph *schemaGraph, s *openapi3.Schema, v any, example bool) (any, error) {
	for _, ptr := range g.opts.Unique {
		var err error
		if v, err = g.uniqueAt(graph, s, v, ptr, g.opts.Scope+ptr, example); err != nil {
			return nil, err
		}
	}
	return v, nil
}

// UniqueAt returns v, a value of s, with the member at the JSON pointer ptr replaced by a value
// unique to slot (see Unique), made from the member's own schema (found through properties,
// items and composition) and built on the string there, if any, as a prefix; the result is
// checked against s as a whole.
func (g *Generator) UniqueAt(s *openapi3.SchemaRef, v any, ptr, slot string) (any, error) {
	graph, err := analyse(s)
	if err != nil {
		return nil, err
	}
	if v, err = g.uniqueAt(graph, s.Value, v, ptr, slot, true); err != nil {
		return nil, err
	}
	if err := concise(graph.validate(s.Value, v, true)); err != nil {
		return nil, fmt.Errorf("unique %s: the value is no longer valid: %w", ptr, err)
	}
	return v, nil
}

// UniqueAtEach is UniqueAt for each pointer of ptrs, the one at index i unique to slots[i],
// with the result checked against s once rather than after each member: a body with many
// unique members (a Kubernetes object's strings) against a large schema costs one check.
// On an error the caller cannot tell which member broke the value; UniqueAt one by one can.
func (g *Generator) UniqueAtEach(s *openapi3.SchemaRef, v any, ptrs, slots []string) (any, error) {
	if len(ptrs) != len(slots) {
		return nil, fmt.Errorf("unique: %d pointers for %d slots", len(ptrs), len(slots))
	}
	graph, err := analyse(s)
	if err != nil {
		return nil, err
	}
	for i, ptr := range ptrs {
		if v, err = g.uniqueAt(graph, s.Value, v, ptr, slots[i], true); err != nil {
			return nil, err
		}
	}
	if err := concise(graph.validate(s.Value, v, true)); err != nil {
		return nil, fmt.Errorf("unique %s: the value is no longer valid: %w", strings.Join(ptrs, ", "), err)
	}
	return v, nil
}

// uniqueAt replaces the member of v at ptr by a unique value for slot; keepPrefix builds it
// on the string there.
func (g *Generator) uniqueAt(graph *schemaGraph, s *openapi3.Schema, v any, ptr, slot string, keepPrefix bool) (any, error) {
	tokens, err := parsePointer(ptr)
	if err != nil {
		return nil, err
	}
	sub := schemaAt(s, tokens, map[*openapi3.Schema]bool{})
	if sub == nil {
		return nil, fmt.Errorf("unique %s: the schema has no member there", ptr)
	}
	hint := ""
	if cur, err := runtimeexpr.Pointer(v, ptr); err == nil && keepPrefix {
		if str, ok := cur.(string); ok {
			hint = str
		}
	}
	u, err := g.unique(graph, sub, slot, hint)
	if err != nil {
		return nil, err
	}
	if v, err = setAt(v, ptr, u); err != nil {
		return nil, fmt.Errorf("unique %s: %w", ptr, err)
	}
	return v, nil
}

// uniqueValid checks v, valid for s before applyUnique, again when Unique pointers changed it
// (a unique member can break uniqueItems or oneOf). Values are checked once otherwise: the
// walker checks every value it makes against its schema, the whole one too, and examples are
// checked before they are picked.
func (g *Generator) uniqueValid(graph *schemaGraph, s *openapi3.Schema, v any) error {
	if len(g.opts.Unique) == 0 {
		return nil
	}
	return concise(graph.validate(s, v, true))
}

// walker returns a walker for schemas of graph drawing from rng; uniq, when not nil, makes it
// make unique leaves.
func (g *Generator) walker(graph *schemaGraph, rng *mrand.Rand, uniq *uniqueState) *walker {
	return &walker{rng: rng, ignoreExamples: g.opts.IgnoreExamples, uniq: uniq, graph: graph, active: map[int]int{}}
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
