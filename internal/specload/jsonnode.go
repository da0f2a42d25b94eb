package specload

import (
	"fmt"
	"math"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"

	"go.yaml.in/yaml/v4"
)

// Tags of the scalar nodes the loader builds and reads.
const (
	tagStr   = "!!str"
	tagInt   = "!!int"
	tagFloat = "!!float"
	tagBool  = "!!bool"
	tagNull  = "!!null"
	tagMap   = "!!map"
	tagSeq   = "!!seq"
	tagMerge = "!!merge"
)

// maxDepth bounds the nesting of a document, as encoding/json and go-yaml do.
const maxDepth = 10000

// parseJSON parses a JSON document straight into a yaml.Node tree, the form kin-openapi's native
// decoder reads, keeping member order and line numbers. It is about twice as fast as
// encoding/json into an any followed by a conversion, and it is where JSON's rules are applied:
// a repeated member name keeps its last value (as encoding/json does), numbers must be finite,
// nesting is bounded by maxDepth.
func parseJSON(data []byte) (*yaml.Node, error) {
	p := &jsonParser{data: data, line: 1, keys: map[string]*yaml.Node{}}
	p.skipSpace()
	n, err := p.value(0)
	if err != nil {
		return nil, err
	}
	p.skipSpace()
	if p.pos < len(p.data) {
		return nil, p.errorf("unexpected %s after the top-level value", p.quoteChar())
	}
	return n, nil
}

type jsonParser struct {
	data      []byte
	pos       int
	line      int
	lineStart int
	// slab hands out nodes in blocks, which costs one allocation per block instead of per node.
	slab []yaml.Node
	// stack holds the children of the containers being parsed.
	stack []*yaml.Node
	// keys holds the key node of each member name seen: names repeat throughout a document, and
	// nothing reads or writes a key node but its text, so one node serves every use of a name
	// (at the line of the first).
	keys map[string]*yaml.Node
	buf  []byte
}

// jsonError is a syntax error with its position; or, when final, an error YAML's reading of the
// text (its superset) cannot fix.
type jsonError struct {
	line, column int
	msg          string
	final        bool
}

func (e *jsonError) Error() string {
	return fmt.Sprintf("invalid JSON at line %d, column %d: %s", e.line, e.column, e.msg)
}

func (p *jsonParser) errorf(format string, args ...any) error {
	return &jsonError{line: p.line, column: p.pos - p.lineStart + 1, msg: fmt.Sprintf(format, args...)}
}

func (p *jsonParser) finalf(format string, args ...any) error {
	err := p.errorf(format, args...).(*jsonError)
	err.final = true
	return err
}

func (p *jsonParser) quoteChar() string {
	if p.pos >= len(p.data) {
		return "end of input"
	}
	r, _ := utf8.DecodeRune(p.data[p.pos:])
	return strconv.QuoteRune(r)
}

func (p *jsonParser) node(kind yaml.Kind, tag string) *yaml.Node {
	if len(p.slab) == 0 {
		p.slab = make([]yaml.Node, 1024)
	}
	n := &p.slab[0]
	p.slab = p.slab[1:]
	n.Kind, n.Tag = kind, tag
	n.Line, n.Column = p.line, p.pos-p.lineStart+1
	return n
}

func (p *jsonParser) skipSpace() {
	for p.pos < len(p.data) {
		switch p.data[p.pos] {
		case ' ', '\t', '\r':
		case '\n':
			p.line++
			p.lineStart = p.pos + 1
		default:
			return
		}
		p.pos++
	}
}

// value parses the value at p.pos, whose leading space is skipped.
func (p *jsonParser) value(depth int) (*yaml.Node, error) {
	if p.pos >= len(p.data) {
		return nil, p.errorf("unexpected end of input")
	}
	switch c := p.data[p.pos]; {
	case c == '{':
		return p.object(depth + 1)
	case c == '[':
		return p.array(depth + 1)
	case c == '"':
		n := p.node(yaml.ScalarNode, tagStr)
		n.Style = yaml.DoubleQuotedStyle
		s, err := p.str()
		if err != nil {
			return nil, err
		}
		n.Value = s
		return n, nil
	case c == '-' || c >= '0' && c <= '9':
		return p.number()
	case c == 't':
		return p.literal("true", tagBool)
	case c == 'f':
		return p.literal("false", tagBool)
	case c == 'n':
		return p.literal("null", tagNull)
	default:
		return nil, p.errorf("unexpected %s, want a value", p.quoteChar())
	}
}

func (p *jsonParser) literal(word, tag string) (*yaml.Node, error) {
	if len(p.data)-p.pos < len(word) || string(p.data[p.pos:p.pos+len(word)]) != word {
		return nil, p.errorf("unexpected %s, want a value", p.quoteChar())
	}
	n := p.node(yaml.ScalarNode, tag)
	n.Value = word
	p.pos += len(word)
	return n, nil
}

func (p *jsonParser) object(depth int) (*yaml.Node, error) {
	if depth > maxDepth {
		return nil, p.finalf("exceeded max depth of %d", maxDepth)
	}
	n := p.node(yaml.MappingNode, tagMap)
	n.Style = yaml.FlowStyle
	p.pos++ // {
	base := len(p.stack)
	var seen map[string]int // member name → index of its key in p.stack, for large objects
	p.skipSpace()
	if p.pos < len(p.data) && p.data[p.pos] == '}' {
		p.pos++
		n.Content = []*yaml.Node{}
		return n, nil
	}
	for {
		if p.pos >= len(p.data) || p.data[p.pos] != '"' {
			return nil, p.errorf("unexpected %s, want a member name", p.quoteChar())
		}
		k, err := p.key()
		if err != nil {
			return nil, err
		}
		name := k.Value
		p.skipSpace()
		if p.pos >= len(p.data) || p.data[p.pos] != ':' {
			return nil, p.errorf("unexpected %s, want ':'", p.quoteChar())
		}
		p.pos++
		p.skipSpace()
		v, err := p.value(depth)
		if err != nil {
			return nil, err
		}
		// A repeated name keeps its last value, at its first position.
		dup := -1
		members := (len(p.stack) - base) / 2
		if seen != nil {
			if i, ok := seen[name]; ok {
				dup = i
			}
		} else {
			for i := base; i < len(p.stack); i += 2 {
				if p.stack[i].Value == name {
					dup = i
					break
				}
			}
		}
		if dup >= 0 {
			p.stack[dup+1] = v
		} else {
			p.stack = append(p.stack, k, v)
			if seen == nil && members >= 16 {
				seen = make(map[string]int, 2*members)
				for i := base; i < len(p.stack); i += 2 {
					seen[p.stack[i].Value] = i
				}
			} else if seen != nil {
				seen[name] = len(p.stack) - 2
			}
		}
		done, err := p.next('}')
		if err != nil {
			return nil, err
		}
		if done {
			return p.close(n, base), nil
		}
	}
}

func (p *jsonParser) array(depth int) (*yaml.Node, error) {
	if depth > maxDepth {
		return nil, p.finalf("exceeded max depth of %d", maxDepth)
	}
	n := p.node(yaml.SequenceNode, tagSeq)
	n.Style = yaml.FlowStyle
	p.pos++ // [
	base := len(p.stack)
	p.skipSpace()
	if p.pos < len(p.data) && p.data[p.pos] == ']' {
		p.pos++
		n.Content = []*yaml.Node{}
		return n, nil
	}
	for {
		v, err := p.value(depth)
		if err != nil {
			return nil, err
		}
		p.stack = append(p.stack, v)
		done, err := p.next(']')
		if err != nil {
			return nil, err
		}
		if done {
			return p.close(n, base), nil
		}
	}
}

// next moves past the separator after a member or an element: done when it is end (the
// container's closing bracket), false when it is a comma.
func (p *jsonParser) next(end byte) (done bool, err error) {
	p.skipSpace()
	if p.pos >= len(p.data) {
		return false, p.errorf("unexpected end of input, want ',' or '%c'", end)
	}
	switch p.data[p.pos] {
	case ',':
		p.pos++
		p.skipSpace()
		return false, nil
	case end:
		p.pos++
		return true, nil
	}
	return false, p.errorf("unexpected %s, want ',' or '%c'", p.quoteChar(), end)
}

// close moves the children of container n, which p.stack holds from base on, into n.
func (p *jsonParser) close(n *yaml.Node, base int) *yaml.Node {
	n.Content = append(make([]*yaml.Node, 0, len(p.stack)-base), p.stack[base:]...)
	clear(p.stack[base:])
	p.stack = p.stack[:base]
	return n
}

// key parses a member name into its (shared) key node.
func (p *jsonParser) key() (*yaml.Node, error) {
	line, column := p.line, p.pos-p.lineStart+1
	raw, escaped, err := p.scanString()
	if err != nil {
		return nil, err
	}
	if !escaped {
		if k, ok := p.keys[string(raw)]; ok {
			return k, nil
		}
	}
	k := p.node(yaml.ScalarNode, tagStr)
	k.Style = yaml.DoubleQuotedStyle
	k.Line, k.Column = line, column
	if escaped {
		k.Value, err = p.unescape(raw)
		return k, err
	}
	k.Value = string(raw)
	if len(p.keys) < 1<<16 {
		p.keys[k.Value] = k
	}
	return k, nil
}

// str parses a string value.
func (p *jsonParser) str() (string, error) {
	raw, escaped, err := p.scanString()
	if err != nil {
		return "", err
	}
	if escaped {
		return p.unescape(raw)
	}
	return string(raw), nil
}

// scanString moves past the string at p.pos and returns its raw contents.
func (p *jsonParser) scanString() (raw []byte, escaped bool, err error) {
	p.pos++ // "
	start := p.pos
	for p.pos < len(p.data) {
		switch c := p.data[p.pos]; {
		case c == '"':
			raw = p.data[start:p.pos]
			p.pos++
			return raw, escaped, nil
		case c == '\\':
			escaped = true
			p.pos += 2
		case c < 0x20:
			return nil, false, p.errorf("control character %s in a string", strconv.QuoteRune(rune(c)))
		default:
			p.pos++
		}
	}
	return nil, false, p.errorf("unterminated string")
}

// unescape decodes a string's escapes. Positions in its errors are the end of the string.
func (p *jsonParser) unescape(raw []byte) (string, error) {
	b := p.buf[:0]
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if c != '\\' {
			b = append(b, c)
			continue
		}
		i++
		if i >= len(raw) {
			return "", p.errorf("bad escape in a string")
		}
		switch raw[i] {
		case '"', '\\', '/':
			b = append(b, raw[i])
		case 'b':
			b = append(b, '\b')
		case 'f':
			b = append(b, '\f')
		case 'n':
			b = append(b, '\n')
		case 'r':
			b = append(b, '\r')
		case 't':
			b = append(b, '\t')
		case 'u':
			r, ok := hex4(raw[i+1:])
			if !ok {
				return "", p.errorf("bad \\u escape in a string")
			}
			i += 4
			if utf16.IsSurrogate(r) {
				r2, ok := rune(-1), false
				if i+6 < len(raw) && raw[i+1] == '\\' && raw[i+2] == 'u' {
					r2, ok = hex4(raw[i+3:])
				}
				if dec := utf16.DecodeRune(r, r2); ok && dec != utf8.RuneError {
					r = dec
					i += 6
				} else {
					r = utf8.RuneError
				}
			}
			b = utf8.AppendRune(b, r)
		default:
			return "", p.errorf("bad escape \\%c in a string", raw[i])
		}
	}
	p.buf = b
	return string(b), nil
}

func hex4(b []byte) (rune, bool) {
	if len(b) < 4 {
		return 0, false
	}
	var r rune
	for _, c := range b[:4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			c = c - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// number parses a number: !!int when it is an integer that fits in 64 bits, else !!float.
func (p *jsonParser) number() (*yaml.Node, error) {
	start := p.pos
	end, integer, ok := scanNumber(p.data, start)
	if !ok {
		p.pos = end
		return nil, p.errorf("bad number")
	}
	lit := string(p.data[start:end])
	n := p.node(yaml.ScalarNode, tagInt)
	p.pos = end
	n.Value = lit
	if integer && len(lit) < 19 {
		return n, nil
	}
	if integer {
		if _, err := strconv.ParseInt(lit, 10, 64); err == nil {
			return n, nil
		}
	}
	n.Tag = tagFloat
	f, err := strconv.ParseFloat(lit, 64)
	if err != nil || math.IsInf(f, 0) {
		p.pos = start
		return nil, p.finalf("number %.40s is out of range", lit)
	}
	return n, nil
}

// scanNumber scans the JSON number that starts at s[i]. end is where it ends, or where it goes
// wrong when not ok; integer means it has neither a fraction nor an exponent.
func scanNumber[T string | []byte](s T, i int) (end int, integer, ok bool) {
	if i < len(s) && s[i] == '-' {
		i++
	}
	digits := func() int {
		j := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		return i - j
	}
	switch {
	case i < len(s) && s[i] == '0':
		i++
	case digits() == 0:
		return i, false, false
	}
	integer = true
	if i < len(s) && s[i] == '.' {
		i++
		integer = false
		if digits() == 0 {
			return i, false, false
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		integer = false
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		if digits() == 0 {
			return i, false, false
		}
	}
	return i, integer, true
}
