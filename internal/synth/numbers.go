package synth

import (
	"encoding/binary"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
)

// maxSafeInteger is the largest integer a float64 (and JSON in most clients) holds exactly.
const maxSafeInteger = 1 << 53

// genNumber makes a number (an integer when integer) within s's range and a multiple of its
// multipleOf: a small plausible one (1 to 100 when allowed, else near a bound).
func (w *walker) genNumber(s *openapi3.Schema, integer bool, slot string) (any, error) {
	lo, hi := lowerBound(s), upperBound(s)
	if s.Format == "int32" {
		lo = lo.tighter(bound{v: math.MinInt32}, false)
		hi = hi.tighter(bound{v: math.MaxInt32}, true)
	}
	step, err := numberStep(s, integer)
	if err != nil {
		return nil, err
	}
	kLo, kHi := math.Ceil(lo.v/step), math.Floor(hi.v/step)
	if lo.excl && kLo*step <= lo.v {
		kLo++
	}
	if hi.excl && kHi*step >= hi.v {
		kHi--
	}
	if kLo > kHi || math.IsNaN(kLo) || math.IsNaN(kHi) {
		return nil, fmt.Errorf("no %s in range %s (multipleOf %g)", numberKind(integer), rangeText(lo, hi), step)
	}
	if integer {
		// Stay within exactly representable integers when the range allows.
		if sLo, sHi := max(kLo, math.Ceil(-maxSafeInteger/step)), min(kHi, math.Floor(maxSafeInteger/step)); sLo <= sHi {
			kLo, kHi = sLo, sHi
		}
	}
	var k float64
	if w.uniq != nil && w.uniq.numbers {
		var ok bool
		if k, ok = w.uniqueK(kLo, kHi, step, slot); ok {
			if v := roundTo(k*step, step, integer); !math.IsInf(v, 0) && !math.IsNaN(v) {
				w.uniq.made++
				return v, nil
			}
		}
	} else if w.uniq != nil {
		w.notUnique("numbers are made unique only when no string can be")
	}
	pLo, pHi := kLo, kHi
	switch {
	case lo.v <= 1 && hi.v >= 100:
		pLo, pHi = max(kLo, math.Ceil(1/step)), min(kHi, math.Floor(100/step))
	case !math.IsInf(kLo, 0):
		pHi = min(kHi, kLo+100)
	default:
		pLo = max(kLo, kHi-100)
	}
	if pLo > pHi {
		switch {
		case !math.IsInf(kLo, 0):
			pLo, pHi = kLo, min(kHi, kLo+100)
		case !math.IsInf(kHi, 0):
			pLo, pHi = max(kLo, kHi-100), kHi
		default:
			pLo, pHi = 0, 0
		}
	}
	k = min(pHi, pLo+math.Floor(w.rng.Float64()*(pHi-pLo+1)))
	if w.attempt > 0 {
		// The random value did not validate (not, a second multipleOf): sweep from the low end.
		k = pLo + math.Mod(float64(w.attempt-1), pHi-pLo+1)
	}
	v := roundTo(k*step, step, integer)
	if math.IsInf(v, 0) || math.IsNaN(v) {
		return nil, fmt.Errorf("no finite %s in range %s (multipleOf %g)", numberKind(integer), rangeText(lo, hi), step)
	}
	return v, nil
}

// uniqueK returns a multiplier in [kLo, kHi] derived from the slot, when the range is wide
// enough to be unique: a large plausible number (from 100000) when the range allows.
func (w *walker) uniqueK(kLo, kHi, step float64, slot string) (float64, bool) {
	if kHi-kLo+1 < 1<<minUniqueBits {
		w.notUnique("the range holds fewer than %d values", 1<<minUniqueBits)
		return 0, false
	}
	start := math.Ceil(100000 / step)
	uLo, uHi := kLo, kHi
	switch {
	case kLo <= start && kHi >= start+(1<<32):
		uLo, uHi = start, start+(1<<32)-1
	case !math.IsInf(kLo, 0):
		uHi = min(kHi, kLo+(1<<40)-1)
	default:
		uLo = max(kLo, kHi-(1<<40)+1)
	}
	h := w.uniqueHash(slot)
	width := uint64(uHi - uLo + 1)
	return uLo + float64(binary.LittleEndian.Uint64(h[:8])%width), true
}

// numberStep returns the spacing of the values made: multipleOf, 1 for integers, else 0.5.
func numberStep(s *openapi3.Schema, integer bool) (float64, error) {
	if s.MultipleOf == nil {
		if integer {
			return 1, nil
		}
		return 0.5, nil
	}
	m := *s.MultipleOf
	if !(m > 0) || math.IsInf(m, 0) {
		return 0, fmt.Errorf("multipleOf %g is not a positive number", m)
	}
	if !integer || m == math.Trunc(m) {
		return m, nil
	}
	// An integer multiple of a fraction: the smallest integral multiple of m.
	for k := 2.0; k <= 1000; k++ {
		if v := k * m; math.Abs(v-math.Round(v)) < 1e-9*max(1, v) {
			return math.Round(v), nil
		}
	}
	return 0, fmt.Errorf("no integer is a small multiple of multipleOf %g", m)
}

// roundTo removes the float noise of k*step: it keeps the step's decimals.
func roundTo(v, step float64, integer bool) float64 {
	if integer {
		v = math.Round(v)
	} else if text := strconv.FormatFloat(step, 'f', -1, 64); strings.Contains(text, ".") && !strings.ContainsAny(text, "eE") {
		decimals := len(text) - strings.IndexByte(text, '.') - 1
		if r, err := strconv.ParseFloat(strconv.FormatFloat(v, 'f', decimals, 64), 64); err == nil {
			v = r
		}
	}
	if v == 0 {
		return 0 // not -0
	}
	return v
}

func numberKind(integer bool) string {
	if integer {
		return "integer"
	}
	return "number"
}

// rangeText renders a range for an error message, e.g. "[5, 2]" or "(0, +Inf)".
func rangeText(lo, hi bound) string {
	open, closeBracket := "[", "]"
	if lo.excl {
		open = "("
	}
	if hi.excl {
		closeBracket = ")"
	}
	return fmt.Sprintf("%s%g, %g%s", open, lo.v, hi.v, closeBracket)
}
