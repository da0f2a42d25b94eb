package suites

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/conflictcheck/conflictcheck/internal/engine"
	"github.com/conflictcheck/conflictcheck/internal/fakeapi"
	"github.com/conflictcheck/conflictcheck/internal/plan"
	"github.com/conflictcheck/conflictcheck/internal/scenario"
	"github.com/conflictcheck/conflictcheck/internal/specload"
	"github.com/conflictcheck/conflictcheck/internal/xconflict"
)

// conventionRaceWindow is the fakes' DuplicateRace gap: wide enough that racers released
// together all pass the check on a busy machine.
const conventionRaceWindow = 20 * time.Millisecond

// faultCheck is a fault of the fake and the checks it must fail on the scenario of kind.
type faultCheck struct {
	fault  fakeapi.Fault
	kind   xconflict.Kind
	checks []string
}

var (
	// lostUpdate applies every update: the stale probe succeeds, several racers win and
	// write, and no order of the writes explains their answers.
	lostUpdate = faultCheck{fakeapi.LostUpdate, xconflict.StaleUpdate,
		[]string{CheckSequentialConflict, CheckSingleWinner, CheckStateIntact, CheckLinearizable}}
	// duplicateRace stores duplicates: several racers win and create, which no order explains.
	duplicateRace = faultCheck{fakeapi.DuplicateRace, xconflict.DuplicateCreate,
		[]string{CheckSingleWinner, CheckStateIntact, CheckLinearizable}}
)

// conventions are the API conventions of issue 7, each served by the fake: the clean fake
// must pass every check that applies to each of its scenarios (a duplicate-create and a
// stale-update), and each fault must fail its checks.
var conventions = []struct {
	name   string
	opts   fakeapi.Options
	faults []faultCheck
}{
	{name: "etag", faults: []faultCheck{lostUpdate, duplicateRace}},
	{name: "id in Location only", opts: fakeapi.Options{IDInLocationOnly: true}, faults: []faultCheck{lostUpdate, duplicateRace}},
	{name: "200 on create", opts: fakeapi.Options{CreateStatus: 200}, faults: []faultCheck{duplicateRace}},
	{name: "PUT to create", opts: fakeapi.Options{PUTCreate: true}, faults: []faultCheck{lostUpdate, duplicateRace}},
	{name: "_rev", opts: fakeapi.Options{VersionField: fakeapi.VersionRev}, faults: []faultCheck{lostUpdate}},
	{name: "revision", opts: fakeapi.Options{VersionField: fakeapi.VersionRevision}, faults: []faultCheck{lostUpdate}},
	{name: "resourceVersion", opts: fakeapi.Options{VersionField: fakeapi.VersionResourceVersion}, faults: []faultCheck{lostUpdate, duplicateRace}},
	{name: "lock_version", opts: fakeapi.Options{VersionField: fakeapi.VersionLockVersion}, faults: []faultCheck{lostUpdate}},
	{name: "text rejections", opts: fakeapi.Options{RejectBody: fakeapi.RejectText}, faults: []faultCheck{lostUpdate}},
	{name: "empty rejections", opts: fakeapi.Options{RejectBody: fakeapi.RejectEmpty}, faults: []faultCheck{lostUpdate}},
	{name: "Connection close", opts: fakeapi.Options{ConnectionClose: true}, faults: []faultCheck{lostUpdate, duplicateRace}},
	{name: "303 for a duplicate", opts: fakeapi.Options{DuplicateSeeOther: true}, faults: []faultCheck{duplicateRace}},
	{name: "already applied", opts: fakeapi.Options{AlreadyApplied: true}, faults: []faultCheck{lostUpdate}},
}

// fakePlan loads the document of opts and plans it with the default profile.
func fakePlan(t *testing.T, opts fakeapi.Options) (*specload.Document, *plan.Plan) {
	t.Helper()
	doc, err := specload.LoadBytes(t.Context(), "fakeapi.yaml", []byte(fakeapi.Spec(opts)), specload.Options{})
	if err != nil {
		t.Fatalf("load the fake's document: %v", err)
	}
	p, err := plan.New(doc, plan.Options{Seed: 1})
	if err != nil {
		t.Fatalf("plan the fake's document: %v", err)
	}
	return doc, p
}

// planned is the plan's scenario of kind, or an error saying why there is none.
func planned(p *plan.Plan, kind xconflict.Kind) (plan.Scenario, error) {
	for _, sc := range p.Scenarios {
		if sc.Kind != kind {
			continue
		}
		if sc.Blocked != "" {
			return sc, fmt.Errorf("%s is blocked: %s", sc.ID, sc.Blocked)
		}
		return sc, nil
	}
	var why []string
	for _, u := range p.Uncovered {
		why = append(why, fmt.Sprintf("uncovered %s: %s", u.Operation, u.Reason))
	}
	why = append(why, p.Warnings...)
	return plan.Scenario{}, fmt.Errorf("the plan has no %s scenario (%s)", kind, strings.Join(why, "; "))
}

// runOn runs sc against the fake with the auto strategy, as a run does, again (up to 3 times)
// while the racers do not overlap.
func runOn(t *testing.T, srv *fakeapi.Server, doc *specload.Document, p *plan.Plan, sc plan.Scenario) Evidence {
	t.Helper()
	env := scenario.Env{Doc: doc, Plan: p, Targets: []string{srv.URL},
		Engine: engine.New(engine.Options{Timeout: 5 * time.Second})}
	var ev Evidence
	for range 3 {
		ev = Evidence{Scenario: sc, Result: scenario.Run(t.Context(), sc, env)}
		if ev.Result.Error != "" || ev.Result.Overlapped {
			break
		}
	}
	return ev
}

// judgeAll judges ev with every check, in run order.
func judgeAll(doc *specload.Document, ev Evidence) []CheckOutcome {
	ms := Matchers(Config{Env: scenario.Env{Doc: doc}})
	out := make([]CheckOutcome, len(CheckIDs))
	for i, id := range CheckIDs {
		out[i] = judge(id, ms[id], &ev)
	}
	return out
}

// checkOf is the outcome of check id.
func checkOf(cs []CheckOutcome, id string) CheckOutcome {
	i := slices.IndexFunc(cs, func(c CheckOutcome) bool { return c.ID == id })
	if i < 0 {
		return CheckOutcome{ID: id}
	}
	return cs[i]
}

// TestConventions: for every convention, in plain OpenAPI (what inference must handle) and
// described by x-conflict, the plan has a duplicate-create and a stale-update; against the
// clean fake every check holds or does not apply, and cleanup leaves nothing behind; against
// each fault its checks fail.
func TestConventions(t *testing.T) {
	for _, conv := range conventions {
		t.Run(conv.name, func(t *testing.T) {
			for _, described := range []bool{false, true} {
				variant := "plain"
				if described {
					variant = "x-conflict"
				}
				t.Run(variant, func(t *testing.T) {
					opts := conv.opts
					opts.XConflict = described
					doc, p := fakePlan(t, opts)
					t.Run("clean", func(t *testing.T) { conventionHolds(t, opts, doc, p) })
					for _, f := range conv.faults {
						t.Run(string(f.fault), func(t *testing.T) { faultCaught(t, opts, doc, p, f) })
					}
				})
			}
		})
	}
}

// conventionHolds runs the duplicate-create and the stale-update against the clean fake.
func conventionHolds(t *testing.T, opts fakeapi.Options, doc *specload.Document, p *plan.Plan) {
	srv := fakeapi.Start(t, opts)
	ran := 0
	for _, kind := range []xconflict.Kind{xconflict.DuplicateCreate, xconflict.StaleUpdate} {
		sc, err := planned(p, kind)
		if err != nil {
			t.Error(err)
			continue
		}
		ran++
		ev := runOn(t, srv, doc, p, sc)
		switch {
		case ev.Result.Error != "":
			t.Errorf("%s stopped: %s", sc.ID, ev.Result.Error)
			continue
		case !ev.Result.Overlapped:
			// A machine too busy to overlap the racers in nine attempts proves nothing either way.
			t.Logf("%s: %s; not judged", sc.ID, NoOverlap(ev.Result))
			continue
		}
		for _, c := range judgeAll(doc, ev) {
			switch c.Status {
			case Failed, Inconclusive:
				t.Errorf("%s: %s %s:\n%s", sc.ID, c.ID, c.Status, c.Message)
			}
		}
		if len(ev.Result.Leftovers) > 0 {
			t.Errorf("%s left %v behind", sc.ID, ev.Result.Leftovers)
		}
	}
	if n := srv.Live(); ran > 0 && n != 0 {
		t.Errorf("%d widgets live after every scenario cleaned up, want 0", n)
	}
}

// faultCaught runs f's scenario against the fake with f's fault: each of f's checks must fail.
func faultCaught(t *testing.T, opts fakeapi.Options, doc *specload.Document, p *plan.Plan, f faultCheck) {
	sc, err := planned(p, f.kind)
	if err != nil {
		t.Fatal(err)
	}
	opts.Fault, opts.RaceWindow = f.fault, conventionRaceWindow
	ev := runOn(t, fakeapi.Start(t, opts), doc, p, sc)
	if ev.Result.Error == "" && !ev.Result.Overlapped {
		t.Skipf("%s: %s", sc.ID, NoOverlap(ev.Result))
	}
	cs := judgeAll(doc, ev)
	for _, id := range f.checks {
		c := checkOf(cs, id)
		switch {
		case c.Status != Failed:
			t.Errorf("%s with fault %s: %s %s (%s); want it failed\nerror: %s", sc.ID, f.fault, id, c.Status, c.Message, ev.Result.Error)
		case !strings.HasPrefix(c.Message, id+" failed for "+sc.ID+": "):
			t.Errorf("failure message:\n%s", c.Message)
		}
	}
}

// TestWeakETagConvention: weak ETags can never satisfy If-Match (strong comparison), so the
// stale-update cannot be run: the run says so, naming the weak tag and RFC 9110's strong
// comparison, and no check passes on it; the duplicate-create still holds.
func TestWeakETagConvention(t *testing.T) {
	opts := fakeapi.Options{WeakETag: true}
	doc, p := fakePlan(t, opts)
	srv := fakeapi.Start(t, opts)

	sc, err := planned(p, xconflict.StaleUpdate)
	if err != nil {
		t.Fatal(err)
	}
	ev := runOn(t, srv, doc, p, sc)
	for _, want := range []string{`W/"`, "weak", "RFC 9110", "strong"} {
		if !strings.Contains(ev.Result.Error, want) {
			t.Errorf("the run's error %q does not say %q", ev.Result.Error, want)
		}
	}
	for _, c := range judgeAll(doc, ev) {
		if c.Status == Passed || c.Status == Failed {
			t.Errorf("%s %s on a scenario that could not run: %s", c.ID, c.Status, c.Message)
		}
		if c.Status == Inconclusive && !strings.Contains(c.Message, "weak") {
			t.Errorf("%s is inconclusive without naming the weak ETag: %s", c.ID, c.Message)
		}
	}

	dc, err := planned(p, xconflict.DuplicateCreate)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range judgeAll(doc, runOn(t, srv, doc, p, dc)) {
		if c.Status == Failed || c.Status == Inconclusive {
			t.Errorf("%s: %s %s:\n%s", dc.ID, c.ID, c.Status, c.Message)
		}
	}
}

// TestRejectBodyAgainstSpec: conflict-body judges a rejection by the response its document
// declares: a fake whose document declares problem+json but that answers text/plain or
// nothing fails it, with a message naming both; every other check still holds.
func TestRejectBodyAgainstSpec(t *testing.T) {
	for _, answered := range []fakeapi.RejectBody{fakeapi.RejectText, fakeapi.RejectEmpty} {
		t.Run(string(answered), func(t *testing.T) {
			doc, p := fakePlan(t, fakeapi.Options{RejectBody: fakeapi.RejectProblem})
			srv := fakeapi.Start(t, fakeapi.Options{RejectBody: answered})
			for _, kind := range []xconflict.Kind{xconflict.DuplicateCreate, xconflict.StaleUpdate} {
				sc, err := planned(p, kind)
				if err != nil {
					t.Fatal(err)
				}
				cs := judgeAll(doc, runOn(t, srv, doc, p, sc))
				c := checkOf(cs, CheckConflictBody)
				want := "the spec declares application/problem+json for "
				if c.Status != Failed || !strings.Contains(c.Message, want) {
					t.Errorf("%s: conflict-body %s, want failed saying %q:\n%s", sc.ID, c.Status, want, c.Message)
				}
				for _, c := range cs {
					if c.ID != CheckConflictBody && (c.Status == Failed || c.Status == Inconclusive) {
						t.Errorf("%s: %s %s:\n%s", sc.ID, c.ID, c.Status, c.Message)
					}
				}
			}
		})
	}
}
