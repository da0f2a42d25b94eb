package api

import (
	"errors"
	"strconv"
	"strings"

	"github.com/conflictcheck/conflictcheck/reference-server/store"
)

// etag is the strong entity tag of an item at a version. Versions count every write, so the
// tag changes exactly when the item does.
func etag(version int64) string { return `"v` + strconv.FormatInt(version, 10) + `"` }

// errIfMatchSyntax is returned for an If-Match value that is neither `*` nor a list of tags.
var errIfMatchSyntax = errors.New(`If-Match must be "*" or a comma-separated list of quoted entity tags, e.g. "v3"`)

// parseIfMatch turns If-Match field values into a precondition (RFC 9110 §13.1.1): `*` matches
// any current item, a strong tag of ours matches its version, and a weak tag never matches,
// since If-Match uses the strong comparison.
func parseIfMatch(values []string) (store.Precondition, error) {
	var pre store.Precondition
	var tags int
	for _, v := range values {
		for _, part := range strings.Split(v, ",") {
			part = strings.Trim(part, " \t")
			if part == "" {
				continue // RFC 9110 §5.6.1: empty list elements are ignored
			}
			if part == "*" {
				pre.Any = true
				continue
			}
			weak := strings.HasPrefix(part, "W/")
			opaque := strings.TrimPrefix(part, "W/")
			if len(opaque) < 2 || opaque[0] != '"' || opaque[len(opaque)-1] != '"' || !etagChars(opaque[1:len(opaque)-1]) {
				return store.Precondition{}, errIfMatchSyntax
			}
			tags++
			if weak {
				continue
			}
			if v, ok := versionOf(opaque[1 : len(opaque)-1]); ok {
				pre.Versions = append(pre.Versions, v)
			}
		}
	}
	if (pre.Any && tags > 0) || (!pre.Any && tags == 0) {
		return store.Precondition{}, errIfMatchSyntax
	}
	return pre, nil
}

// etagChars reports whether s is made of etagc characters (%x21 / %x23-7E / obs-text).
func etagChars(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '"' || c < 0x21 || c == 0x7f {
			return false
		}
	}
	return true
}

// versionOf reads our own opaque tag "v<version>"; foreign tags match no version.
func versionOf(opaque string) (int64, bool) {
	digits, ok := strings.CutPrefix(opaque, "v")
	if !ok || digits == "" || digits[0] == '0' {
		return 0, false
	}
	v, err := strconv.ParseInt(digits, 10, 64)
	return v, err == nil
}
