package scenario

import (
	"regexp"
	"strings"

	"github.com/google/uuid"

	"github.com/conflictcheck/conflictcheck/internal/plan"
	"github.com/conflictcheck/conflictcheck/internal/runtimeexpr"
	"github.com/conflictcheck/conflictcheck/internal/specload"
	"github.com/conflictcheck/conflictcheck/internal/xconflict"
)

// uniqueTail matches the suffix the planner's synthesis appends to make a value unique per
// run ("SKU-1-hcmybkzkmk").
var uniqueTail = regexp.MustCompile(`-[a-z0-9]{10}$`)

// freshen returns c with the values that make its resource unique replaced by new ones, so
// that a setup can run again without colliding with its first run: the key pointers the
// operation's duplicate-create x-conflict declares, and string values that carry the planner's
// unique suffix.
func freshen(doc *specload.Document, c plan.Call) plan.Call {
	m, ok := runtimeexpr.Clone(c.Body).(map[string]any)
	if !ok {
		return c
	}
	var key []string
	if doc != nil {
		for _, x := range doc.Conflicts[c.Operation] {
			if x.Kind == xconflict.DuplicateCreate {
				key = x.Key
			}
		}
	}
	for name, v := range m {
		if s, ok := v.(string); ok && !runtimeexpr.IsExpression(s) && uniqueTail.MatchString(s) {
			m[name] = newTail(s)
		}
	}
	for _, ptr := range key {
		v, err := runtimeexpr.Pointer(m, ptr)
		s, isStr := v.(string)
		if err != nil || !isStr || runtimeexpr.IsExpression(s) || uniqueTail.MatchString(s) {
			continue
		}
		if nb, err := runtimeexpr.Set(m, ptr, s+"-"+randomTail()); err == nil {
			m, _ = nb.(map[string]any)
		}
	}
	c.Body = m
	return c
}

// newTail replaces s's unique suffix, or appends one.
func newTail(s string) string {
	if loc := uniqueTail.FindStringIndex(s); loc != nil {
		return s[:loc[0]] + "-" + randomTail()
	}
	return s + "-" + randomTail()
}

// randomTail is 10 random lowercase hex digits.
func randomTail() string {
	return strings.ReplaceAll(uuid.NewString(), "-", "")[:10]
}
