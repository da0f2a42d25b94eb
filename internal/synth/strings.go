package synth

import (
	"crypto/sha256"
	"encoding/base32"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"math/big"
	"net/netip"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/google/uuid"
)

// words make unconstrained strings plausible: "conflictcheck-amber".
var words = []string{
	"amber", "birch", "cedar", "delta", "ember", "fjord", "garnet", "harbor", "indigo", "juniper",
	"kestrel", "lagoon", "maple", "nectar", "onyx", "pebble", "quartz", "raven", "sable", "tundra",
	"umber", "velvet", "willow", "xenon", "yarrow", "zephyr",
}

func (w *walker) word() string { return words[w.rng.IntN(len(words))] }

// minUniqueBits is the least randomness a unique value must carry: two runs then pick the
// same value with a probability of at most 1/65536.
const minUniqueBits = 16

// genString makes a string that satisfies s's length, pattern and format: from the format
// first, then the pattern, then a plausible "conflictcheck-<word>".
func (w *walker) genString(s *openapi3.Schema, slot string) (any, error) {
	minL, maxL, err := lengthRange(s)
	if err != nil {
		return nil, err
	}
	var pat *pattern
	if s.Pattern != "" {
		if pat, err = compilePattern(s.Pattern); err != nil {
			return nil, err
		}
	}
	ok := func(v string) bool { return stringFits(s, pat, v, minL, maxL) }
	if w.uniq != nil {
		if v, found := w.uniqueString(s, pat, slot, minL, maxL, ok); found {
			w.uniq.made++
			return v, nil
		}
	}
	for _, short := range []bool{false, true} {
		if v, known := w.formatValue(s.Format, short); known && ok(v) {
			return v, nil
		}
	}
	var patErr error
	if pat != nil {
		for range 3 {
			v, _, err := pat.generate(w.rng, minL, maxL)
			if err != nil {
				patErr = err
				break
			}
			if ok(v) {
				return v, nil
			}
		}
		if patErr != nil {
			return nil, patErr
		}
	}
	if v := w.plain(minL, maxL); ok(v) {
		return v, nil
	}
	switch {
	case pat != nil:
		return nil, fmt.Errorf("no string matches pattern %q with length %d to %d and format %q", s.Pattern, minL, maxL, s.Format)
	case s.Format != "":
		return nil, fmt.Errorf("no string of format %q with length %d to %d", s.Format, minL, maxL)
	}
	return nil, fmt.Errorf("no string of length %d to %d", minL, maxL)
}

// lengthRange returns the rune lengths a string for s may have, within what synthesis makes.
func lengthRange(s *openapi3.Schema) (int, int, error) {
	if s.MaxLength != nil && s.MinLength > *s.MaxLength {
		return 0, 0, fmt.Errorf("minLength %d exceeds maxLength %d", s.MinLength, *s.MaxLength)
	}
	if s.MinLength > maxStringLen {
		return 0, 0, fmt.Errorf("minLength %d is longer than the %d characters synthesis makes", s.MinLength, maxStringLen)
	}
	maxL := maxStringLen
	if s.MaxLength != nil && *s.MaxLength < maxStringLen {
		maxL = int(*s.MaxLength)
	}
	return int(s.MinLength), maxL, nil
}

// stringFits checks a string against s's string keywords (not enum, not composition).
func stringFits(s *openapi3.Schema, pat *pattern, v string, minL, maxL int) bool {
	if n := utf8.RuneCountInString(v); n < minL || n > maxL || !utf8.ValidString(v) {
		return false
	}
	if pat != nil && !pat.re.MatchString(v) {
		return false
	}
	if s.Format != "" {
		f, ok := stringFormats[s.Format]
		if !ok {
			f, ok = openapi3.SchemaStringFormats[s.Format]
		}
		if ok && f.Validate(v) != nil {
			return false
		}
	}
	return true
}

// plain returns "conflictcheck-<word>" fitted to the length range.
func (w *walker) plain(minL, maxL int) string {
	word := w.word()
	v := "conflictcheck-" + word
	if len(v) > maxL {
		v = word
	}
	for len(v) < minL {
		v += "-" + w.word()
	}
	if len(v) > maxL {
		v = v[:maxL]
	}
	return v
}

// formatValue returns a value of a known string format; short asks for a minimal one.
func (w *walker) formatValue(format string, short bool) (string, bool) {
	word := w.word()
	switch format {
	case "uuid":
		var b [16]byte
		binary.LittleEndian.PutUint64(b[:8], w.rng.Uint64())
		binary.LittleEndian.PutUint64(b[8:], w.rng.Uint64())
		b[6] = b[6]&0x0f | 0x40
		b[8] = b[8]&0x3f | 0x80
		return uuid.UUID(b).String(), true
	case "email", "idn-email":
		if short {
			return word[:2] + "@ex.io", true
		}
		return "conflictcheck-" + word + "@example.com", true
	case "date":
		return w.someTime().Format(time.DateOnly), true
	case "date-time":
		return w.someTime().Format(time.RFC3339), true
	case "time":
		return w.someTime().Format("15:04:05Z"), true
	case "uri", "url", "iri":
		if short {
			return "https://ex.io", true
		}
		return "https://example.com/conflictcheck/" + word, true
	case "uri-reference", "iri-reference":
		return "/conflictcheck/" + word, true
	case "hostname", "idn-hostname":
		if short {
			return word[:2] + ".io", true
		}
		return word + ".example.com", true
	case "ipv4":
		return netip.AddrFrom4([4]byte{192, 0, 2, byte(1 + w.rng.IntN(254))}).String(), true
	case "ipv6":
		a := netip.MustParseAddr("2001:db8::").As16()
		binary.BigEndian.PutUint16(a[14:], uint16(1+w.rng.IntN(0xfffe)))
		return netip.AddrFrom16(a).String(), true
	case "byte":
		if short {
			return base64.StdEncoding.EncodeToString([]byte(word)), true
		}
		return base64.StdEncoding.EncodeToString([]byte("conflictcheck-" + word)), true
	case "duration":
		return fmt.Sprintf("PT%dM", 1+w.rng.IntN(59)), true
	case "json-pointer":
		return "/" + word, true
	case "relative-json-pointer":
		return "0", true
	case "regex":
		return "^" + word + "$", true
	}
	return "", false
}

// someTime returns a time in the 2020s, to the second.
func (w *walker) someTime() time.Time {
	start := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	return start.Add(time.Duration(w.rng.Int64N(10*365*24*3600)) * time.Second)
}

// uniqueHash returns the hash unique values of a slot derive from.
func (w *walker) uniqueHash(slot string) [32]byte {
	return sha256.Sum256([]byte("conflictcheck unique\x00" + w.uniq.runID + "\x00" + w.uniq.slot + slot))
}

var token32 = base32.StdEncoding.WithPadding(base32.NoPadding)

// uniqueToken returns n lower-case base32 characters (5 bits each) derived from the slot.
func (w *walker) uniqueToken(slot string, n int) string {
	var b strings.Builder
	for i := 0; b.Len() < n; i++ {
		h := w.uniqueHash(fmt.Sprintf("%s\x00%d", slot, i))
		b.WriteString(strings.ToLower(token32.EncodeToString(h[:])))
	}
	return b.String()[:n]
}

// uniqueDigits returns n decimal digits derived from the slot.
func (w *walker) uniqueDigits(slot string, n int) string {
	var b strings.Builder
	for i := 0; b.Len() < n; i++ {
		h := w.uniqueHash(fmt.Sprintf("%s\x00d%d", slot, i))
		b.WriteString(new(big.Int).SetBytes(h[:]).String()[1:])
	}
	return b.String()[:n]
}

// uniqueString returns a string for s derived from the RunID and slot, if one fits: a format
// value, the hint or "conflictcheck-" plus a token, a pattern match with enough randomness.
func (w *walker) uniqueString(s *openapi3.Schema, pat *pattern, slot string, minL, maxL int, ok func(string) bool) (string, bool) {
	fits := func(v string) bool { return ok(v) && w.check(s, v, false) == nil }
	if v, known := w.uniqueFormat(s.Format, slot); known {
		if fits(v) {
			return v, true
		}
	}
	hint := ""
	if ex, isString := s.Example.(string); isString {
		hint = ex
	}
	if slot == "" && w.uniq.hint != "" {
		hint = w.uniq.hint
	}
	var prefixes []string
	if hint != "" {
		prefixes = append(prefixes, hint+"-")
	}
	prefixes = append(prefixes, "conflictcheck-", "cc-", "", "CC-")
	for _, prefix := range prefixes {
		p := utf8.RuneCountInString(prefix)
		n := min(max(10, minL-p), maxL-p)
		if n*5 < minUniqueBits {
			continue
		}
		tok := w.uniqueToken(slot, n)
		for _, v := range []string{prefix + tok, prefix + strings.ToUpper(tok)} {
			if fits(v) {
				return v, true
			}
		}
	}
	if n := min(max(15, minL), maxL); n >= 5 {
		if v := w.uniqueDigits(slot, n); fits(v) {
			return v, true
		}
	}
	if pat != nil {
		// Longer strings carry more randomness: grow the target until it is enough.
		rng := newRand("unique pattern", w.uniq.runID, w.uniq.slot+slot)
		lowBits := false
		if lo, hi, err := pat.lengths(minL, maxL); err == nil {
			for target := 16; ; target *= 2 {
				v, bits, err := pat.generateLen(rng, min(max(target, lo), hi))
				if err == nil && bits >= minUniqueBits && fits(v) {
					return v, true
				}
				lowBits = err == nil && bits < minUniqueBits
				if target >= hi || target >= 256 {
					break
				}
			}
		}
		if lowBits {
			w.notUnique("pattern %q admits too few strings to be unique", s.Pattern)
			return "", false
		}
	}
	w.notUnique("no unique string satisfies the schema (length %d to %d, pattern %q, format %q)", minL, maxL, s.Pattern, s.Format)
	return "", false
}

// uniqueFormat returns a unique value of a known format.
func (w *walker) uniqueFormat(format, slot string) (string, bool) {
	h := w.uniqueHash(slot)
	tok := w.uniqueToken(slot, 10)
	switch format {
	case "uuid":
		return uuid.NewSHA1(uuid.NameSpaceURL, h[:]).String(), true
	case "email", "idn-email":
		return "conflictcheck-" + tok + "@example.com", true
	case "date":
		days := binary.LittleEndian.Uint64(h[:8]) % 365000
		return time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, int(days)).Format(time.DateOnly), true
	case "date-time":
		secs := binary.LittleEndian.Uint64(h[:8]) % (1000 * 365 * 24 * 3600)
		return time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(secs) * time.Second).Format(time.RFC3339), true
	case "time":
		nanos := binary.LittleEndian.Uint64(h[:8]) % uint64(24*time.Hour)
		return time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(nanos)).Format("15:04:05.000000000Z"), true
	case "uri", "url", "iri":
		return "https://example.com/conflictcheck/" + tok, true
	case "uri-reference", "iri-reference":
		return "/conflictcheck/" + tok, true
	case "hostname", "idn-hostname":
		return tok + ".example.com", true
	case "ipv4":
		return netip.AddrFrom4([4]byte{10, h[0], h[1], h[2]}).String(), true
	case "ipv6":
		a := netip.MustParseAddr("2001:db8::").As16()
		copy(a[4:], h[:12])
		return netip.AddrFrom16(a).String(), true
	case "byte":
		return base64.StdEncoding.EncodeToString([]byte("conflictcheck-" + tok)), true
	}
	return "", false
}
