// Package profile holds the conventions APIs follow when they refuse a conflict: per conflict
// kind and concurrency mechanism, the statuses that count as a correct rejection under RFC 9110,
// the Kubernetes API conventions, CouchDB, Google's AIPs or Zalando's guidelines, each with its
// source (409-SEMANTICS.md §2, §4, §5), so that a run expects what the API's own rules prescribe
// and `conflictcheck plan` can say why.
package profile

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/conflictcheck/conflictcheck/internal/xconflict"
)

// Mechanism is how a scenario's requests conflict, where the sources expect different statuses
// for one kind (a stale If-Match header gets 412 under RFC 9110, a stale body version 409).
type Mechanism string

// The mechanisms the sources tell apart; MechanismAny is a kind's usual one.
const (
	// MechanismAny is the kind's usual mechanism: a plain create, an If-Match header, racers
	// meeting in flight.
	MechanismAny Mechanism = ""
	// MechanismCreate is a duplicate-create by a create without precondition (POST, or a PUT
	// on a client-chosen id without If-None-Match).
	MechanismCreate Mechanism = "create"
	// MechanismIfNoneMatch is a duplicate-create by PUT with `If-None-Match: *`.
	MechanismIfNoneMatch Mechanism = "if-none-match"
	// MechanismIfMatch is a stale-update whose version travels in a header precondition
	// (If-Match, If-Unmodified-Since).
	MechanismIfMatch Mechanism = "if-match"
	// MechanismBodyVersion is a stale-update whose version travels in the body or the query
	// (resourceVersion, _rev, version).
	MechanismBodyVersion Mechanism = "body-version"
	// MechanismInFlight is an idempotency key used by racers while its first request runs.
	MechanismInFlight Mechanism = "in-flight"
	// MechanismKeyReused is an idempotency key reused with another payload.
	MechanismKeyReused Mechanism = "key-reused"
)

// Default is the profile of a zero Profile and of `--profile`'s default.
const Default = "rfc9110"

// Rule is what a profile expects of one kind and mechanism: Codes always, and each of
// IfDeclared where the operation documents it (an alternative the profile's sources allow but
// do not prescribe), with Source saying where that comes from.
type Rule struct {
	Kind       xconflict.Kind
	Mechanism  Mechanism
	Codes      []int
	IfDeclared []int
	Source     string
}

// Profile is a named set of rules plus the `--expect` overrides applied to it; the zero value is
// the rfc9110 profile without overrides. It is a value: Override returns a new one.
type Profile struct {
	name      string
	rules     []Rule
	overrides map[xconflict.Kind]override
}

// override is one `--expect KIND=CODES`: its codes and its text as given.
type override struct {
	codes []int
	spec  string
}

// rule builds a Rule; extra lists the statuses accepted where declared.
func rule(kind xconflict.Kind, m Mechanism, codes, extra []int, source string) Rule {
	return Rule{Kind: kind, Mechanism: m, Codes: codes, IfDeclared: extra, Source: source}
}

// codes is a literal list of statuses.
func codes(c ...int) []int { return c }

// The rules of each profile, derived from 409-SEMANTICS.md's K1–K8 table and §4. The first rule
// of a kind is its MechanismAny.
var profiles = map[string][]Rule{
	"rfc9110": {
		rule(xconflict.DuplicateCreate, MechanismCreate, codes(409), codes(303), "RFC 9110 §15.5.10; 303 See Other to the existing resource where declared, §9.3.3"),
		rule(xconflict.DuplicateCreate, MechanismIfNoneMatch, codes(412), codes(409), "RFC 9110 §13.1.2 If-None-Match; 409 where declared, as S3 answers a racing conditional write"),
		rule(xconflict.StaleUpdate, MechanismIfMatch, codes(412), codes(409), "RFC 9110 §13.1.1 If-Match; 409 where declared"),
		rule(xconflict.StaleUpdate, MechanismBodyVersion, codes(409), nil, "RFC 9110 §15.5.10; not 412, as no header condition was sent, §15.5.13"),
		rule(xconflict.Transition, MechanismAny, codes(409), nil, "RFC 9110 §15.5.10, conflict with the current state"),
		rule(xconflict.DeleteInUse, MechanismAny, codes(409), codes(404, 422), "RFC 9110 §15.5.10; a losing dependent create may get 404 or 422 where declared"),
		rule(xconflict.IdempotencyKey, MechanismInFlight, codes(409), nil, "Idempotency-Key draft §2.7"),
		rule(xconflict.IdempotencyKey, MechanismKeyReused, codes(422), nil, "Idempotency-Key draft §2.7"),
		rule(xconflict.Capacity, MechanismAny, codes(409), nil, "RFC 9110 §15.5.10, conflict with the current state"),
	},
	"kubernetes": {
		rule(xconflict.DuplicateCreate, MechanismCreate, codes(409), nil, "API conventions: AlreadyExists"),
		rule(xconflict.DuplicateCreate, MechanismIfNoneMatch, codes(409), codes(412), "API conventions: AlreadyExists; 412 where declared, RFC 9110 §13.1.2"),
		rule(xconflict.StaleUpdate, MechanismIfMatch, codes(409), codes(412), "API conventions: Conflict; 412 where declared, RFC 9110 §13.1.1"),
		rule(xconflict.StaleUpdate, MechanismBodyVersion, codes(409), nil, "API conventions: Conflict"),
		rule(xconflict.Transition, MechanismAny, codes(409), nil, "API conventions: Conflict"),
		rule(xconflict.DeleteInUse, MechanismAny, codes(409), codes(404, 422), "API conventions: Conflict, as for delete preconditions; a losing dependent create may get 404 or 422 where declared"),
		rule(xconflict.IdempotencyKey, MechanismInFlight, codes(409), nil, "no Kubernetes rule; Idempotency-Key draft §2.7"),
		rule(xconflict.IdempotencyKey, MechanismKeyReused, codes(422), codes(400), "no Kubernetes rule; Idempotency-Key draft §2.7: 422, or 400 where declared"),
		rule(xconflict.Capacity, MechanismAny, codes(409), codes(403, 429), "API conventions: Conflict; 403 from quota admission, or 429, where declared"),
	},
	"couchdb": {
		rule(xconflict.DuplicateCreate, MechanismCreate, codes(409), nil, "CouchDB: an existing document id is a 409 conflict"),
		rule(xconflict.DuplicateCreate, MechanismIfNoneMatch, codes(409), codes(412), "CouchDB: an existing document id is a 409 conflict; 412 where declared"),
		rule(xconflict.StaleUpdate, MechanismIfMatch, codes(409), nil, "CouchDB: a stale rev is a 409 conflict, even in If-Match"),
		rule(xconflict.StaleUpdate, MechanismBodyVersion, codes(409), nil, "CouchDB: a stale _rev, in the body or ?rev=, is a 409 conflict"),
		rule(xconflict.Transition, MechanismAny, codes(409), nil, "CouchDB: document update conflict"),
		rule(xconflict.DeleteInUse, MechanismAny, codes(409), codes(404, 422), "CouchDB: document update conflict; a losing dependent create may get 404 or 422 where declared"),
		rule(xconflict.IdempotencyKey, MechanismInFlight, codes(409), nil, "no CouchDB rule; Idempotency-Key draft §2.7"),
		rule(xconflict.IdempotencyKey, MechanismKeyReused, codes(422), codes(400), "no CouchDB rule; Idempotency-Key draft §2.7: 422, or 400 where declared"),
		rule(xconflict.Capacity, MechanismAny, codes(409), nil, "CouchDB: document update conflict"),
	},
	"google": {
		rule(xconflict.DuplicateCreate, MechanismCreate, codes(409), nil, "AIP-133 ALREADY_EXISTS"),
		rule(xconflict.DuplicateCreate, MechanismIfNoneMatch, codes(409), codes(412), "AIP-133 ALREADY_EXISTS; 412 where declared, RFC 9110 §13.1.2"),
		rule(xconflict.StaleUpdate, MechanismIfMatch, codes(409), codes(412), "AIP-154 ABORTED; 412 where declared, RFC 9110 §13.1.1"),
		rule(xconflict.StaleUpdate, MechanismBodyVersion, codes(409), nil, "AIP-154 ABORTED"),
		rule(xconflict.Transition, MechanismAny, codes(400), nil, "AIP-216 FAILED_PRECONDITION"),
		rule(xconflict.DeleteInUse, MechanismAny, codes(400), codes(404), "AIP-135 FAILED_PRECONDITION; a losing dependent create may get NOT_FOUND 404 where declared"),
		rule(xconflict.IdempotencyKey, MechanismInFlight, codes(409), nil, "google.rpc ABORTED, a concurrency conflict; AIP-155 request_id"),
		rule(xconflict.IdempotencyKey, MechanismKeyReused, codes(400), codes(422), "google.rpc INVALID_ARGUMENT, AIP-155 having no mismatch rule; 422 where declared"),
		rule(xconflict.Capacity, MechanismAny, codes(400, 409, 429), nil, "google.rpc FAILED_PRECONDITION 400, ABORTED 409, RESOURCE_EXHAUSTED 429"),
	},
	"zalando": {
		rule(xconflict.DuplicateCreate, MechanismCreate, codes(409), nil, "Zalando #231/#251: a duplicate non-idempotent create is a 409"),
		rule(xconflict.DuplicateCreate, MechanismIfNoneMatch, codes(412), nil, "Zalando #182: If-None-Match: * on an existing resource is a 412"),
		rule(xconflict.StaleUpdate, MechanismIfMatch, codes(412), nil, "Zalando #150/#182: a failed If-* header is a 412, not a 409"),
		rule(xconflict.StaleUpdate, MechanismBodyVersion, codes(409), nil, "Zalando optimistic locking: a version number in the body gets 409"),
		rule(xconflict.Transition, MechanismAny, codes(409), codes(405), "Zalando #150: 409; 405 for a state-dependent method where declared"),
		rule(xconflict.DeleteInUse, MechanismAny, codes(409), codes(404, 422), "Zalando #150: 409; a losing dependent create may get 404 or 422 where declared"),
		rule(xconflict.IdempotencyKey, MechanismInFlight, codes(409), nil, "Zalando #230 Idempotency-Key; draft §2.7"),
		rule(xconflict.IdempotencyKey, MechanismKeyReused, codes(400), nil, "Zalando #230: a changed request under a used key is a 400"),
		rule(xconflict.Capacity, MechanismAny, codes(409), nil, "Zalando #150: 409, conflict with the current state"),
	},
}

// names lists the profiles in `--profile`'s order.
var names = []string{"rfc9110", "kubernetes", "couchdb", "google", "zalando"}

// Names lists the profiles, the default first.
func Names() []string { return slices.Clone(names) }

// Get returns the named profile (case-insensitive); an unknown name is an error listing them.
func Get(name string) (Profile, error) {
	n := strings.ToLower(strings.TrimSpace(name))
	rules, ok := profiles[n]
	if !ok {
		return Profile{}, fmt.Errorf("unknown profile %q (known: %s)", name, strings.Join(names, ", "))
	}
	return Profile{name: n, rules: rules}, nil
}

// Name is the profile's name ("rfc9110" for the zero value).
func (p Profile) Name() string {
	if p.name == "" {
		return Default
	}
	return p.name
}

// Rules returns the profile's rules, kind by kind in xconflict.Kinds order, before overrides.
func (p Profile) Rules() []Rule {
	out := make([]Rule, 0, len(p.table()))
	for _, r := range p.table() {
		r.Codes, r.IfDeclared = slices.Clone(r.Codes), slices.Clone(r.IfDeclared)
		out = append(out, r)
	}
	return out
}

// table is the profile's rules, the default's for the zero value.
func (p Profile) table() []Rule {
	if p.rules == nil {
		return profiles[Default]
	}
	return p.rules
}

// Override returns p with every mechanism of one kind expecting other statuses. spec is a
// `--expect` value, KIND=CODES with CODES comma-separated statuses within 100..599 (e.g.
// "transition=400,409"); a later override of the same kind replaces an earlier one.
func (p Profile) Override(spec string) (Profile, error) {
	k, list, ok := strings.Cut(spec, "=")
	if !ok {
		return p, fmt.Errorf("%q is not KIND=CODES (e.g. transition=400,409)", spec)
	}
	kind := xconflict.Kind(strings.TrimSpace(k))
	if !slices.Contains(xconflict.Kinds, kind) {
		known := make([]string, len(xconflict.Kinds))
		for i, k := range xconflict.Kinds {
			known[i] = string(k)
		}
		return p, fmt.Errorf("%q: unknown kind %q (known: %s)", spec, kind, strings.Join(known, ", "))
	}
	var cs []int
	for _, f := range strings.Split(list, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			return p, fmt.Errorf("%q: an empty status code (want CODES like 400,409)", spec)
		}
		c, err := strconv.Atoi(f)
		if err != nil {
			return p, fmt.Errorf("%q: %q is not a status code", spec, f)
		}
		if c < 100 || c > 599 {
			return p, fmt.Errorf("%q: status %d is not within 100..599", spec, c)
		}
		if !slices.Contains(cs, c) {
			cs = append(cs, c)
		}
	}
	out := p
	out.overrides = make(map[xconflict.Kind]override, len(p.overrides)+1)
	maps.Copy(out.overrides, p.overrides)
	out.overrides[kind] = override{codes: cs, spec: string(kind) + "=" + joinInts(cs)}
	return out, nil
}

// Overridden returns the `--expect` value (KIND=CODES, normalised) that overrides kind, if any.
func (p Profile) Overridden(kind xconflict.Kind) (string, bool) {
	o, ok := p.overrides[kind]
	return o.spec, ok
}

// Rule returns the profile's rule for kind and mechanism: the kind's rule for that mechanism,
// else its first (MechanismAny's); false for an unknown kind.
func (p Profile) Rule(kind xconflict.Kind, m Mechanism) (Rule, bool) {
	var first Rule
	found := false
	for _, r := range p.table() {
		if r.Kind != kind {
			continue
		}
		if r.Mechanism == m {
			return r, true
		}
		if !found {
			first, found = r, true
		}
	}
	return first, found
}

// Expect returns the statuses that count as a correct rejection for kind by mechanism m, and
// why, in words for `conflictcheck plan`'s notes: an override of the kind when there is one,
// else the profile's rule, its IfDeclared statuses included where declares (nil: nothing is
// declared) reports that the operation documents them.
func (p Profile) Expect(kind xconflict.Kind, m Mechanism, declares func(status int) bool) ([]int, string) {
	r, ok := p.Rule(kind, m)
	base := slices.Clone(r.Codes)
	for _, c := range r.IfDeclared {
		if declares != nil && declares(c) && !slices.Contains(base, c) {
			base = append(base, c)
		}
	}
	what := describe(kind, r.Mechanism)
	if o, over := p.overrides[kind]; over {
		why := "--expect " + o.spec
		if ok {
			why += fmt.Sprintf(", over profile %s's %v for %s (%s)", p.Name(), base, what, r.Source)
		}
		return slices.Clone(o.codes), why
	}
	if !ok {
		return []int{409}, fmt.Sprintf("profile %s has no rule for kind %s: 409 (RFC 9110 §15.5.10)", p.Name(), kind)
	}
	return base, fmt.Sprintf("profile %s, %s (%s)", p.Name(), what, r.Source)
}

// describe names a kind and mechanism in words.
func describe(kind xconflict.Kind, m Mechanism) string {
	switch m {
	case MechanismCreate:
		return string(kind) + " by a plain create"
	case MechanismIfNoneMatch:
		return string(kind) + " by PUT with If-None-Match: *"
	case MechanismIfMatch:
		return string(kind) + " with an If-Match precondition"
	case MechanismBodyVersion:
		return string(kind) + " with a body version"
	case MechanismInFlight:
		return string(kind) + " in flight"
	case MechanismKeyReused:
		return string(kind) + " reused with another payload"
	}
	return string(kind)
}

// joinInts joins statuses with commas, as CODES is written.
func joinInts(xs []int) string {
	parts := make([]string, len(xs))
	for i, x := range xs {
		parts[i] = strconv.Itoa(x)
	}
	return strings.Join(parts, ",")
}
