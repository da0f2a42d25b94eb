package profile

import (
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/conflictcheck/conflictcheck/internal/xconflict"
)

// declaring reports the given statuses as documented.
func declaring(statuses ...int) func(int) bool {
	return func(s int) bool { return slices.Contains(statuses, s) }
}

func TestProfiles(t *testing.T) {
	const (
		dup   = xconflict.DuplicateCreate
		stale = xconflict.StaleUpdate
		tr    = xconflict.Transition
		del   = xconflict.DeleteInUse
		idem  = xconflict.IdempotencyKey
		cap_  = xconflict.Capacity
	)
	tests := []struct {
		profile  string
		kind     xconflict.Kind
		mech     Mechanism
		declared []int
		want     []int
		source   string
	}{
		// rfc9110, the default.
		{"rfc9110", dup, MechanismCreate, nil, []int{409}, "RFC 9110 §15.5.10"},
		{"rfc9110", dup, MechanismCreate, []int{303, 409}, []int{409, 303}, "§9.3.3"},
		{"rfc9110", dup, MechanismAny, nil, []int{409}, "RFC 9110 §15.5.10"},
		{"rfc9110", dup, MechanismIfNoneMatch, nil, []int{412}, "RFC 9110 §13.1.2"},
		{"rfc9110", dup, MechanismIfNoneMatch, []int{409}, []int{412, 409}, "RFC 9110 §13.1.2"},
		{"rfc9110", stale, MechanismIfMatch, nil, []int{412}, "RFC 9110 §13.1.1"},
		{"rfc9110", stale, MechanismIfMatch, []int{409, 412}, []int{412, 409}, "RFC 9110 §13.1.1"},
		{"rfc9110", stale, MechanismAny, []int{409}, []int{412, 409}, "RFC 9110 §13.1.1"},
		{"rfc9110", stale, MechanismBodyVersion, []int{409, 412}, []int{409}, "§15.5.13"},
		{"rfc9110", tr, MechanismAny, []int{405}, []int{409}, "RFC 9110 §15.5.10"},
		{"rfc9110", del, MechanismAny, nil, []int{409}, "RFC 9110 §15.5.10"},
		{"rfc9110", del, MechanismAny, []int{422}, []int{409, 422}, "RFC 9110 §15.5.10"},
		{"rfc9110", idem, MechanismInFlight, nil, []int{409}, "draft §2.7"},
		{"rfc9110", idem, MechanismKeyReused, []int{400}, []int{422}, "draft §2.7"},
		{"rfc9110", cap_, MechanismAny, []int{429}, []int{409}, "RFC 9110 §15.5.10"},
		// kubernetes: 409 for everything, the version in the body.
		{"kubernetes", dup, MechanismCreate, nil, []int{409}, "AlreadyExists"},
		{"kubernetes", dup, MechanismIfNoneMatch, []int{412}, []int{409, 412}, "AlreadyExists"},
		{"kubernetes", stale, MechanismBodyVersion, nil, []int{409}, "API conventions: Conflict"},
		{"kubernetes", stale, MechanismIfMatch, nil, []int{409}, "API conventions: Conflict"},
		{"kubernetes", tr, MechanismAny, nil, []int{409}, "Conflict"},
		{"kubernetes", del, MechanismAny, nil, []int{409}, "delete preconditions"},
		{"kubernetes", idem, MechanismInFlight, nil, []int{409}, "no Kubernetes rule"},
		{"kubernetes", idem, MechanismKeyReused, []int{400}, []int{422, 400}, "no Kubernetes rule"},
		{"kubernetes", cap_, MechanismAny, []int{403}, []int{409, 403}, "quota"},
		// couchdb: 409 even through If-Match.
		{"couchdb", dup, MechanismCreate, nil, []int{409}, "CouchDB"},
		{"couchdb", dup, MechanismIfNoneMatch, nil, []int{409}, "CouchDB"},
		{"couchdb", stale, MechanismIfMatch, []int{412}, []int{409}, "even in If-Match"},
		{"couchdb", stale, MechanismBodyVersion, nil, []int{409}, "_rev"},
		{"couchdb", tr, MechanismAny, nil, []int{409}, "CouchDB"},
		{"couchdb", del, MechanismAny, nil, []int{409}, "CouchDB"},
		{"couchdb", idem, MechanismKeyReused, nil, []int{422}, "no CouchDB rule"},
		{"couchdb", cap_, MechanismAny, nil, []int{409}, "CouchDB"},
		// google: ALREADY_EXISTS, ABORTED and FAILED_PRECONDITION.
		{"google", dup, MechanismCreate, nil, []int{409}, "AIP-133 ALREADY_EXISTS"},
		{"google", stale, MechanismIfMatch, nil, []int{409}, "AIP-154 ABORTED"},
		{"google", stale, MechanismBodyVersion, nil, []int{409}, "AIP-154 ABORTED"},
		{"google", tr, MechanismAny, []int{409}, []int{400}, "AIP-216 FAILED_PRECONDITION"},
		{"google", del, MechanismAny, nil, []int{400}, "AIP-135 FAILED_PRECONDITION"},
		{"google", idem, MechanismInFlight, nil, []int{409}, "ABORTED"},
		{"google", idem, MechanismKeyReused, nil, []int{400}, "INVALID_ARGUMENT"},
		{"google", idem, MechanismKeyReused, []int{422}, []int{400, 422}, "INVALID_ARGUMENT"},
		{"google", cap_, MechanismAny, nil, []int{400, 409, 429}, "RESOURCE_EXHAUSTED 429"},
		// zalando: 412 for headers, 409 for body versions, 400 for a reused key.
		{"zalando", dup, MechanismCreate, nil, []int{409}, "Zalando #231/#251"},
		{"zalando", dup, MechanismIfNoneMatch, []int{409}, []int{412}, "Zalando #182"},
		{"zalando", stale, MechanismIfMatch, []int{409}, []int{412}, "Zalando #150/#182"},
		{"zalando", stale, MechanismBodyVersion, nil, []int{409}, "version number in the body"},
		{"zalando", tr, MechanismAny, []int{405}, []int{409, 405}, "Zalando #150"},
		{"zalando", del, MechanismAny, nil, []int{409}, "Zalando #150"},
		{"zalando", idem, MechanismInFlight, nil, []int{409}, "Zalando #230"},
		{"zalando", idem, MechanismKeyReused, []int{422}, []int{400}, "Zalando #230"},
		{"zalando", cap_, MechanismAny, nil, []int{409}, "Zalando #150"},
	}
	for _, tt := range tests {
		p, err := Get(tt.profile)
		if err != nil {
			t.Fatal(err)
		}
		got, why := p.Expect(tt.kind, tt.mech, declaring(tt.declared...))
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s %s/%s declaring %v: expect %v; want %v", tt.profile, tt.kind, tt.mech, tt.declared, got, tt.want)
		}
		if !strings.HasPrefix(why, "profile "+tt.profile+", "+string(tt.kind)) || !strings.Contains(why, tt.source) {
			t.Errorf("%s %s/%s: why %q; want it to name the profile, the kind and %q", tt.profile, tt.kind, tt.mech, why, tt.source)
		}
	}
}

// Every profile has a rule, with codes and a source, for every kind and every mechanism the
// sources tell apart.
func TestEveryProfileCoversEveryKind(t *testing.T) {
	mechs := map[xconflict.Kind][]Mechanism{
		xconflict.DuplicateCreate: {MechanismCreate, MechanismIfNoneMatch},
		xconflict.StaleUpdate:     {MechanismIfMatch, MechanismBodyVersion},
		xconflict.IdempotencyKey:  {MechanismInFlight, MechanismKeyReused},
	}
	if got := Names(); got[0] != Default || len(got) != 5 {
		t.Errorf("Names() = %v; want five, %s first", got, Default)
	}
	for _, name := range Names() {
		p, err := Get(name)
		if err != nil {
			t.Fatalf("Get(%q): %v", name, err)
		}
		if p.Name() != name {
			t.Errorf("Get(%q).Name() = %q", name, p.Name())
		}
		for _, k := range xconflict.Kinds {
			ms := mechs[k]
			if ms == nil {
				ms = []Mechanism{MechanismAny}
			}
			for _, m := range ms {
				r, ok := p.Rule(k, m)
				if !ok || r.Mechanism != m || len(r.Codes) == 0 || r.Source == "" {
					t.Errorf("%s: rule for %s/%s = %+v, %v; want codes and a source", name, k, m, r, ok)
				}
				for _, c := range append(slices.Clone(r.Codes), r.IfDeclared...) {
					if c < 300 || c > 499 {
						t.Errorf("%s %s/%s: status %d is no rejection", name, k, m, c)
					}
				}
			}
		}
	}
}

func TestZeroProfileIsRFC9110(t *testing.T) {
	var zero Profile
	rfc, _ := Get("RFC9110")
	if zero.Name() != "rfc9110" || !reflect.DeepEqual(zero.Rules(), rfc.Rules()) {
		t.Errorf("zero profile = %s %v; want rfc9110's rules", zero.Name(), zero.Rules())
	}
	got, why := zero.Expect(xconflict.StaleUpdate, MechanismIfMatch, nil)
	if !reflect.DeepEqual(got, []int{412}) || !strings.HasPrefix(why, "profile rfc9110,") {
		t.Errorf("zero profile stale-update = %v %q", got, why)
	}
}

func TestGetUnknown(t *testing.T) {
	_, err := Get("aws")
	if err == nil || !strings.Contains(err.Error(), `"aws"`) || !strings.Contains(err.Error(), "rfc9110, kubernetes, couchdb, google, zalando") {
		t.Errorf("Get(aws) error = %v; want it to name aws and list the profiles", err)
	}
}

func TestOverride(t *testing.T) {
	g, _ := Get("google")
	p, err := g.Override("transition=400, 409,400")
	if err != nil {
		t.Fatal(err)
	}
	p, err = p.Override("stale-update=412")
	if err != nil {
		t.Fatal(err)
	}
	p, err = p.Override("stale-update=428,412")
	if err != nil {
		t.Fatal(err)
	}
	got, why := p.Expect(xconflict.Transition, MechanismAny, nil)
	if !reflect.DeepEqual(got, []int{400, 409}) || !strings.HasPrefix(why, "--expect transition=400,409, over profile google's [400]") || !strings.Contains(why, "AIP-216") {
		t.Errorf("overridden transition = %v %q", got, why)
	}
	// Every mechanism of the kind, the later override winning.
	for _, m := range []Mechanism{MechanismIfMatch, MechanismBodyVersion, MechanismAny} {
		if got, _ := p.Expect(xconflict.StaleUpdate, m, declaring(409)); !reflect.DeepEqual(got, []int{428, 412}) {
			t.Errorf("overridden stale-update/%s = %v; want [428 412]", m, got)
		}
	}
	if spec, ok := p.Overridden(xconflict.StaleUpdate); !ok || spec != "stale-update=428,412" {
		t.Errorf("Overridden(stale-update) = %q %v", spec, ok)
	}
	// Other kinds and the original profile are untouched.
	if got, _ := p.Expect(xconflict.DeleteInUse, MechanismAny, nil); !reflect.DeepEqual(got, []int{400}) {
		t.Errorf("delete-in-use = %v; want google's [400]", got)
	}
	if _, ok := g.Overridden(xconflict.Transition); ok {
		t.Error("Override changed the profile it was called on")
	}
}

func TestOverrideErrors(t *testing.T) {
	for spec, want := range map[string][]string{
		"transition":            {"not KIND=CODES", "transition=400,409"},
		"dupe=409":              {`unknown kind "dupe"`, "duplicate-create, stale-update, transition, delete-in-use, idempotency-key, capacity"},
		"transition=":           {"empty status code"},
		"transition=409,":       {"empty status code"},
		"transition=abc":        {`"abc" is not a status code`},
		"transition=99":         {"99 is not within 100..599"},
		"capacity=600":          {"600 is not within 100..599"},
		"stale-update=412;409":  {`"412;409" is not a status code`},
		"=409":                  {`unknown kind ""`},
		"idempotency-key=4 09 ": {`"4 09" is not a status code`},
	} {
		_, err := Profile{}.Override(spec)
		if err == nil {
			t.Errorf("Override(%q) succeeded", spec)
			continue
		}
		for _, w := range want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("Override(%q) = %q; want it to say %q", spec, err, w)
			}
		}
	}
}
