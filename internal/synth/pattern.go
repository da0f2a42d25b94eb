package synth

import (
	"fmt"
	"math"
	"math/rand/v2"
	"regexp"
	"regexp/syntax"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"
)

// Bounds of pattern generation, whatever the pattern.
const (
	maxPatternSteps = 1 << 20 // regexp nodes visited per string
	lengthInf       = 1 << 30 // stands for an unbounded length
)

// pattern is a compiled schema pattern with what generation needs: its parse tree, the
// lengths each node can match, and the characters each class offers. It is immutable.
type pattern struct {
	source string
	re     *regexp.Regexp
	root   *syntax.Regexp
	spans  map[*syntax.Regexp]span
	pools  map[*syntax.Regexp]*runePool
}

// span is the range of rune lengths a node matches; min > max means it matches nothing.
type span struct{ min, max int }

func (s span) impossible() bool { return s.min > s.max }

var impossible = span{min: lengthInf, max: 0}

var patterns sync.Map // source → *pattern or error

// codepointEscape is how kin-openapi turns ECMA-262 \uXXXX escapes into Go syntax.
var codepointEscape = regexp.MustCompile(`(?P<replaced_with_slash_x>\\u)(?P<code>[0-9A-F]{4})`)

// compilePattern compiles a schema pattern as kin-openapi does (Go syntax after rewriting
// \uXXXX), and prepares it for generation.
func compilePattern(source string) (*pattern, error) {
	if cached, ok := patterns.Load(source); ok {
		if err, isErr := cached.(error); isErr {
			return nil, err
		}
		return cached.(*pattern), nil
	}
	p, err := newPattern(source)
	if err != nil {
		err = fmt.Errorf("pattern %q: %w", source, err)
		patterns.Store(source, err)
		return nil, err
	}
	patterns.Store(source, p)
	return p, nil
}

func newPattern(source string) (*pattern, error) {
	goSyntax := codepointEscape.ReplaceAllString(source, `\x{${code}}`)
	re, err := regexp.Compile(goSyntax)
	if err != nil {
		return nil, err
	}
	root, err := syntax.Parse(goSyntax, syntax.Perl)
	if err != nil {
		return nil, err
	}
	p := &pattern{source: source, re: re, root: root,
		spans: map[*syntax.Regexp]span{}, pools: map[*syntax.Regexp]*runePool{}}
	p.measure(root)
	return p, nil
}

// measure computes the spans (and class pools) of n and the nodes under it.
func (p *pattern) measure(n *syntax.Regexp) span {
	subs := make([]span, len(n.Sub))
	for i, sub := range n.Sub {
		subs[i] = p.measure(sub)
	}
	var sp span
	switch n.Op {
	case syntax.OpNoMatch:
		sp = impossible
	case syntax.OpLiteral:
		sp = span{len(n.Rune), len(n.Rune)}
	case syntax.OpCharClass:
		pool := newRunePool(n.Rune)
		p.pools[n] = pool
		sp = span{1, 1}
		if pool.empty() {
			sp = impossible
		}
	case syntax.OpAnyChar, syntax.OpAnyCharNotNL:
		sp = span{1, 1}
	case syntax.OpCapture:
		sp = subs[0]
	case syntax.OpConcat:
		for _, s := range subs {
			if s.impossible() {
				sp = impossible
				break
			}
			sp = span{addLen(sp.min, s.min), addLen(sp.max, s.max)}
		}
	case syntax.OpAlternate:
		sp = impossible
		for _, s := range subs {
			if !s.impossible() {
				sp = span{min(sp.min, s.min), max(sp.max, s.max)}
			}
		}
	case syntax.OpStar, syntax.OpPlus, syntax.OpQuest, syntax.OpRepeat:
		lo, hi := repeatBounds(n)
		sub := subs[0]
		switch {
		case sub.impossible() && lo == 0:
			sp = span{0, 0}
		case sub.impossible():
			sp = impossible
		case hi < 0:
			sp = span{mulLen(lo, sub.min), lengthInf}
			if sub.max == 0 {
				sp.max = 0
			}
		default:
			sp = span{mulLen(lo, sub.min), mulLen(hi, sub.max)}
		}
	default: // empty match, anchors, word boundaries
		sp = span{0, 0}
	}
	p.spans[n] = sp
	return sp
}

// repeatBounds returns the repeat counts of a repetition node; hi < 0 means unbounded.
func repeatBounds(n *syntax.Regexp) (lo, hi int) {
	switch n.Op {
	case syntax.OpStar:
		return 0, -1
	case syntax.OpPlus:
		return 1, -1
	case syntax.OpQuest:
		return 0, 1
	}
	return n.Min, n.Max
}

func addLen(a, b int) int { return min(a+b, lengthInf) }

func mulLen(a, b int) int {
	if a == 0 || b == 0 {
		return 0
	}
	if a >= lengthInf/b {
		return lengthInf
	}
	return a * b
}

// generate returns a string the pattern matches fully, with a rune length in [lo, hi] when
// it can (short: 6 to 12 runes when allowed), and the bits of randomness spent choosing it.
// The caller checks the result: anchors or word boundaries in the middle of a pattern can
// make a generated string miss.
func (p *pattern) generate(rng *rand.Rand, lo, hi int) (string, float64, error) {
	lo, hi, err := p.lengths(lo, hi)
	if err != nil {
		return "", 0, err
	}
	base := max(lo, min(hi, 6))
	return p.generateLen(rng, base+rng.IntN(min(hi-base, 6)+1))
}

// lengths narrows [lo, hi] to the lengths the pattern can match.
func (p *pattern) lengths(lo, hi int) (int, int, error) {
	sp := p.spans[p.root]
	if sp.impossible() {
		return 0, 0, fmt.Errorf("pattern %q matches no string", p.source)
	}
	lo, hi = max(lo, sp.min), min(hi, sp.max, maxStringLen)
	if lo > hi {
		return 0, 0, fmt.Errorf("pattern %q matches no string of %d to %d characters", p.source, lo, hi)
	}
	return lo, hi, nil
}

// generateLen is generate aiming at target runes.
func (p *pattern) generateLen(rng *rand.Rand, target int) (string, float64, error) {
	g := &patternGen{p: p, rng: rng}
	g.gen(p.root, target)
	if g.steps > maxPatternSteps {
		return "", 0, fmt.Errorf("pattern %q is too complex to generate from", p.source)
	}
	return g.out.String(), g.bits, nil
}

// patternGen is one generation: the string so far, and the randomness spent.
type patternGen struct {
	p     *pattern
	rng   *rand.Rand
	out   strings.Builder
	bits  float64
	steps int
}

// choose returns a random int in [0, n) and counts its randomness.
func (g *patternGen) choose(n int) int {
	if n <= 1 {
		return 0
	}
	g.bits += math.Log2(float64(n))
	return g.rng.IntN(n)
}

// gen writes a string n matches, aiming at target runes.
func (g *patternGen) gen(n *syntax.Regexp, target int) {
	g.steps++
	if g.steps > maxPatternSteps {
		return
	}
	switch n.Op {
	case syntax.OpLiteral:
		for _, r := range n.Rune {
			g.out.WriteRune(r)
		}
	case syntax.OpCharClass:
		g.out.WriteRune(g.p.pools[n].pick(g))
	case syntax.OpAnyChar, syntax.OpAnyCharNotNL:
		g.out.WriteByte(alnum[g.choose(len(alnum))])
	case syntax.OpCapture:
		g.gen(n.Sub[0], target)
	case syntax.OpConcat:
		spans := make([]span, len(n.Sub))
		for i, sub := range n.Sub {
			spans[i] = g.p.spans[sub]
		}
		for i, t := range g.split(target, spans) {
			g.gen(n.Sub[i], t)
		}
	case syntax.OpAlternate:
		g.alternate(n, target)
	case syntax.OpStar, syntax.OpPlus, syntax.OpQuest, syntax.OpRepeat:
		g.repeat(n, target)
	}
}

// alternate picks a branch that can match target runes (else the closest one).
func (g *patternGen) alternate(n *syntax.Regexp, target int) {
	var fit, possible []int
	for i, sub := range n.Sub {
		sp := g.p.spans[sub]
		if sp.impossible() {
			continue
		}
		possible = append(possible, i)
		if sp.min <= target && target <= sp.max {
			fit = append(fit, i)
		}
	}
	if len(possible) == 0 {
		return
	}
	if len(fit) == 0 {
		best := possible[0]
		for _, i := range possible {
			if distance(g.p.spans[n.Sub[i]], target) < distance(g.p.spans[n.Sub[best]], target) {
				best = i
			}
		}
		fit = []int{best}
	}
	i := fit[g.choose(len(fit))]
	sp := g.p.spans[n.Sub[i]]
	g.gen(n.Sub[i], min(max(target, sp.min), sp.max))
}

func distance(sp span, target int) int {
	switch {
	case target < sp.min:
		return sp.min - target
	case target > sp.max:
		return target - sp.max
	}
	return 0
}

// repeat picks a repeat count that can reach target runes and splits target over the copies.
func (g *patternGen) repeat(n *syntax.Regexp, target int) {
	lo, hi := repeatBounds(n)
	if hi < 0 {
		hi = lengthInf
	}
	sub := n.Sub[0]
	sp := g.p.spans[sub]
	count := lo
	if !sp.impossible() && target > 0 && sp.max > 0 {
		cLo := lo
		if sp.max < lengthInf {
			cLo = max(cLo, (target+sp.max-1)/sp.max)
		} else {
			cLo = max(cLo, 1)
		}
		cHi := hi
		if sp.min > 0 {
			cHi = min(cHi, target/sp.min)
		}
		cHi = min(cHi, cLo+4)
		if cLo <= cHi {
			count = cLo + g.choose(cHi-cLo+1)
		} else {
			count = min(cLo, hi)
		}
	}
	if count == 0 {
		return
	}
	spans := make([]span, count)
	for i := range spans {
		spans[i] = sp
	}
	for _, t := range g.split(target, spans) {
		g.gen(sub, t)
		if g.steps > maxPatternSteps {
			return
		}
	}
}

// split shares target runes over parts: each gets its minimum, the rest goes at random to
// parts with room.
func (g *patternGen) split(target int, spans []span) []int {
	out := make([]int, len(spans))
	extra := target
	for i, sp := range spans {
		out[i] = sp.min
		extra -= sp.min
	}
	var open []int
	for i, sp := range spans {
		if sp.max > sp.min {
			open = append(open, i)
		}
	}
	for extra > 0 && len(open) > 0 {
		j := g.rng.IntN(len(open))
		i := open[j]
		room := min(spans[i].max, out[i]+extra) - out[i]
		add := 1 + g.rng.IntN(room)
		out[i] += add
		extra -= add
		if out[i] >= spans[i].max {
			open[j] = open[len(open)-1]
			open = open[:len(open)-1]
		}
	}
	return out
}

const alnum = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

// runePool is what a character class offers generation: its letters and digits when it has
// some (plausible values), else its visible ASCII, else any printable rune it holds.
type runePool struct {
	runes  []rune // the preferred runes, when the class has ASCII ones
	ranges []rune // otherwise the class's ranges (pairs), surrogates removed
	total  int    // runes in ranges
}

func newRunePool(ranges []rune) *runePool {
	in := func(r rune) bool {
		for i := 0; i+1 < len(ranges); i += 2 {
			if ranges[i] <= r && r <= ranges[i+1] {
				return true
			}
		}
		return false
	}
	p := &runePool{}
	for _, r := range alnum {
		if in(r) {
			p.runes = append(p.runes, r)
		}
	}
	if len(p.runes) == 0 {
		for r := rune('!'); r <= '~'; r++ {
			if in(r) {
				p.runes = append(p.runes, r)
			}
		}
	}
	if len(p.runes) > 0 {
		return p
	}
	for i := 0; i+1 < len(ranges); i += 2 {
		lo, hi := ranges[i], min(ranges[i+1], unicode.MaxRune)
		for _, part := range [][2]rune{{lo, min(hi, 0xD7FF)}, {max(lo, 0xE000), hi}} {
			if part[0] <= part[1] {
				p.ranges = append(p.ranges, part[0], part[1])
				p.total += int(part[1]-part[0]) + 1
			}
		}
	}
	return p
}

func (p *runePool) empty() bool { return len(p.runes) == 0 && p.total == 0 }

// pick returns a random rune of the pool, a printable one when it finds one quickly.
func (p *runePool) pick(g *patternGen) rune {
	if len(p.runes) > 0 {
		return p.runes[g.choose(len(p.runes))]
	}
	g.bits += math.Log2(float64(p.total))
	var r rune
	for range 16 {
		r = p.nth(g.rng.IntN(p.total))
		if unicode.IsPrint(r) && utf8.ValidRune(r) {
			return r
		}
	}
	return r
}

// nth returns the i-th rune of the pool's ranges.
func (p *runePool) nth(i int) rune {
	for j := 0; j+1 < len(p.ranges); j += 2 {
		size := int(p.ranges[j+1]-p.ranges[j]) + 1
		if i < size {
			return p.ranges[j] + rune(i)
		}
		i -= size
	}
	return p.ranges[0]
}
