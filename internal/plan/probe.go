package plan

import (
	"fmt"
	"slices"
	"sort"

	"github.com/conflictcheck/conflictcheck/internal/profile"
	"github.com/conflictcheck/conflictcheck/internal/runtimeexpr"
	"github.com/conflictcheck/conflictcheck/internal/specload"
	"github.com/conflictcheck/conflictcheck/internal/xconflict"
)

// DefaultProbeLimit bounds a capacity probe: how many requests it sends before giving up on
// seeing the bounded quantity run out.
const DefaultProbeLimit = 64

// Probe is the sequential-conflict check of a scenario: Calls are sent one after another (never
// racing), every one but the last must succeed, and the last must be rejected with one of
// Expect. It runs against a subject of its own (the scenario's Setup run once more) so that it
// never spoils the race's.
type Probe struct {
	Calls  []Call `json:"calls"`
	Expect []int  `json:"expect"`
	// SameVersion: every call sends the version read once before the first (stale-update), so
	// the second is stale by construction.
	SameVersion bool `json:"same_version,omitempty"`
	// UntilRejected, when positive, repeats the single call until it is rejected, at most that
	// many times (capacity: consume until the quantity runs out).
	UntilRejected int `json:"until_rejected,omitempty"`
}

// probe plans sc's sequential conflict from its racers.
func (p *planner) probe(sc *Scenario, op specload.Operation) {
	r := sc.Racers
	switch sc.Kind {
	case xconflict.DuplicateCreate:
		// Its own key (a PUT: its own id): the race's must still be free when the race starts.
		c := cloneCall(r[0])
		p.createKeys(sc, op, &c, sc.ID+"/probe")
		sc.Probe = &Probe{Calls: []Call{c, c}, Expect: sc.Expect}
		retry := cloneCall(r[0])
		p.createKeys(sc, op, &retry, sc.ID+"/retry")
		sc.Retry = &retry
	case xconflict.StaleUpdate:
		// The second call sends the other racer's payload, not the first's again: RFC 9110
		// §13.1.1 lets a server answer 2xx to an If-Match write whose change already appears
		// applied, so a stale resend of the same payload may rightly succeed and would misjudge
		// such a server. (Without a second payload, the first is all there is.)
		sc.Probe = &Probe{Calls: []Call{r[0], r[len(r)-1]}, Expect: sc.Expect, SameVersion: true}
	case xconflict.Transition:
		sc.Probe = &Probe{Calls: []Call{r[0], r[len(r)-1]}, Expect: sc.Expect}
	case xconflict.DeleteInUse:
		// The dependent first, then the delete it must block.
		sc.Probe = &Probe{Calls: []Call{r[1], r[0]}, Expect: sc.Expect}
	case xconflict.IdempotencyKey:
		p.retryWithNewKey(sc, sc.Header)
		first := cloneCall(r[0])
		if err := p.uniqueParam(&first, sc.Header, sc.ID+"/probe-key"); err != nil {
			return
		}
		second := cloneCall(first)
		changed, ok := varyBody(second.Body, "")
		if !ok {
			sc.Notes = append(sc.Notes, "no sequential probe: the body has no literal field to vary for a same-key, other-payload request")
			return
		}
		second.Body = changed
		expect, why := p.opts.Profile.Expect(xconflict.IdempotencyKey, profile.MechanismKeyReused, func(status int) bool { return declares(op.Op, status) })
		sc.Probe = &Probe{Calls: []Call{first, second}, Expect: expect}
		sc.Notes = append(sc.Notes, fmt.Sprintf("probe: the key reused with another payload must get %v: %s", expect, why))
	case xconflict.Capacity:
		// No retry: resolving an exhausted quantity means raising it, which only the API's own
		// operations can do (x-conflict.resolve).
		sc.Probe = &Probe{Calls: []Call{r[0]}, Expect: sc.Expect, UntilRejected: DefaultProbeLimit}
	}
}

// retryWithNewKey plans the loser's retry as its request under a new value of header.
func (p *planner) retryWithNewKey(sc *Scenario, header string) {
	retry := cloneCall(sc.Racers[0])
	if err := p.uniqueParam(&retry, header, sc.ID+"/retry-key"); err != nil {
		return
	}
	sc.Retry = &retry
}

// varyBody returns a copy of body with one literal member but skip changed: the first number
// (sorted by name) incremented, else the first string suffixed.
func varyBody(body any, skip string) (any, bool) {
	m, ok := runtimeexpr.Clone(body).(map[string]any)
	if !ok {
		return nil, false
	}
	names := make([]string, 0, len(m))
	for k := range m {
		if k != skip {
			names = append(names, k)
		}
	}
	sort.Strings(names)
	for _, k := range names {
		if n, ok := m[k].(float64); ok {
			m[k] = n + 1
			return m, true
		}
	}
	for _, k := range names {
		if s, ok := m[k].(string); ok && !runtimeexpr.IsExpression(s) {
			m[k] = s + "-2"
			return m, true
		}
	}
	return nil, false
}

// cloneCall copies c deeply enough to change its params and body.
func cloneCall(c Call) Call {
	params := make(map[string]string, len(c.Params))
	for k, v := range c.Params {
		params[k] = v
	}
	c.Params = params
	c.Body = runtimeexpr.Clone(c.Body)
	c.Unique = slices.Clone(c.Unique)
	return c
}
