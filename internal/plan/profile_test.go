package plan

import (
	"context"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/conflictcheck/conflictcheck/internal/profile"
	"github.com/conflictcheck/conflictcheck/internal/specload"
	"github.com/conflictcheck/conflictcheck/openapi"
)

// planWith loads and plans a spec file with a fixed seed and run id and opts' profile.
func planWith(t *testing.T, path string, pr profile.Profile) *Plan {
	t.Helper()
	doc, err := specload.Load(context.Background(), path, specload.Options{})
	if err != nil {
		t.Fatalf("load %s: %v", path, err)
	}
	p, err := New(doc, Options{Seed: 1, RunID: "profile", Profile: pr})
	if err != nil {
		t.Fatalf("plan %s: %v", path, err)
	}
	return p
}

// mustProfile is the named profile with the overrides applied.
func mustProfile(t *testing.T, name string, overrides ...string) profile.Profile {
	t.Helper()
	p, err := profile.Get(name)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range overrides {
		if p, err = p.Override(o); err != nil {
			t.Fatal(err)
		}
	}
	return p
}

// noteWith is the first of sc's notes that starts with prefix, or "".
func noteWith(sc Scenario, prefix string) string {
	for _, n := range sc.Notes {
		if strings.HasPrefix(n, prefix) {
			return n
		}
	}
	return ""
}

func TestProfileExpectations(t *testing.T) {
	tests := []struct {
		profile   profile.Profile
		id        string
		expect    []int
		note      string // the expect note, exactly
		probeWant []int  // the probe's expect, when not nil
	}{
		{profile.Profile{}, "stale-update/replaceWidget", []int{412},
			"expect [412]: profile rfc9110, stale-update with an If-Match precondition (RFC 9110 §13.1.1 If-Match; 409 where declared)", nil},
		{profile.Profile{}, "stale-update/patchWidget", []int{409},
			"expect [409]: profile rfc9110, stale-update with a body version (RFC 9110 §15.5.10; not 412, as no header condition was sent, §15.5.13)", nil},
		{mustProfile(t, "kubernetes"), "stale-update/patchWidget", []int{409},
			"expect [409]: profile kubernetes, stale-update with a body version (API conventions: Conflict)", nil},
		// replaceWidget declares 412 only, which kubernetes accepts where declared.
		{mustProfile(t, "kubernetes"), "stale-update/replaceWidget", []int{409, 412},
			"expect [409 412]: profile kubernetes, stale-update with an If-Match precondition (API conventions: Conflict; 412 where declared, RFC 9110 §13.1.1)", nil},
		{mustProfile(t, "google"), "transition/publishWidget", []int{400},
			"expect [400]: profile google, transition (AIP-216 FAILED_PRECONDITION)", nil},
		{mustProfile(t, "google"), "duplicate-create/createWidget", []int{409},
			"expect [409]: profile google, duplicate-create by a plain create (AIP-133 ALREADY_EXISTS)", nil},
		{mustProfile(t, "zalando"), "idempotency-key/createPayment", []int{409},
			"expect [409]: profile zalando, idempotency-key in flight (Zalando #230 Idempotency-Key; draft §2.7)", []int{400}},
		{profile.Profile{}, "idempotency-key/createPayment", []int{409},
			"expect [409]: profile rfc9110, idempotency-key in flight (Idempotency-Key draft §2.7)", []int{422}},
		// --expect beats the profile, for the race and the probe alike.
		{mustProfile(t, "google", "transition=409,422"), "transition/publishWidget", []int{409, 422},
			"expect [409 422]: --expect transition=409,422, over profile google's [400] for transition (AIP-216 FAILED_PRECONDITION)", nil},
		{mustProfile(t, "rfc9110", "idempotency-key=409"), "idempotency-key/createPayment", []int{409},
			"expect [409]: --expect idempotency-key=409, over profile rfc9110's [409] for idempotency-key in flight (Idempotency-Key draft §2.7)", []int{409}},
	}
	for _, tt := range tests {
		sc, ok := byID(planWith(t, "testdata/inferred.yaml", tt.profile))[tt.id]
		if !ok {
			t.Fatalf("%s: no scenario %s", tt.profile.Name(), tt.id)
		}
		if !reflect.DeepEqual(sc.Expect, tt.expect) {
			t.Errorf("%s %s: expect %v; want %v", tt.profile.Name(), tt.id, sc.Expect, tt.expect)
		}
		if got := noteWith(sc, "expect "); got != tt.note {
			t.Errorf("%s %s: note\n  %q\nwant\n  %q", tt.profile.Name(), tt.id, got, tt.note)
		}
		if tt.probeWant != nil && (sc.Probe == nil || !reflect.DeepEqual(sc.Probe.Expect, tt.probeWant)) {
			t.Errorf("%s %s: probe %+v; want it to expect %v", tt.profile.Name(), tt.id, sc.Probe, tt.probeWant)
		}
	}
}

// An operation's x-conflict expect beats --expect, which beats the profile.
func TestExpectPrecedence(t *testing.T) {
	path := referencePath(t)
	got := byID(planWith(t, path, mustProfile(t, "google", "transition=422")))
	// cancelOrder declares expect [409] in x-conflict: it wins, and the note says so.
	cancel := got["transition/cancelOrder"]
	if !reflect.DeepEqual(cancel.Expect, []int{409}) || noteWith(cancel, "expect ") != "expect [409]: x-conflict's, which wins over --expect transition=422" {
		t.Errorf("cancelOrder expect %v, note %q; want x-conflict's [409] over --expect", cancel.Expect, noteWith(cancel, "expect "))
	}
	// shipOrder has no x-conflict: --expect wins over google's 400.
	ship := got["transition/shipOrder"]
	if !reflect.DeepEqual(ship.Expect, []int{422}) || !strings.HasPrefix(noteWith(ship, "expect "), "expect [422]: --expect transition=422, over profile google's [400]") {
		t.Errorf("shipOrder expect %v, note %q; want --expect's [422]", ship.Expect, noteWith(ship, "expect "))
	}
	// Without --expect, google's own rule.
	if ship := byID(planWith(t, path, mustProfile(t, "google")))["transition/shipOrder"]; !reflect.DeepEqual(ship.Expect, []int{400}) || !reflect.DeepEqual(ship.Probe.Expect, []int{400}) {
		t.Errorf("google shipOrder expect %v, probe %v; want [400]", ship.Expect, ship.Probe.Expect)
	}
	// No note about x-conflict's expect when nothing overrides its kind (the reference plan
	// reads as before).
	for _, sc := range planWith(t, path, profile.Profile{}).Scenarios {
		if n := noteWith(sc, "expect "); sc.Source == FromXConflict && n != "" {
			t.Errorf("%s: note %q", sc.ID, n)
		}
	}
}

// The default profile plans the reference spec exactly as the zero one.
func TestRFC9110IsTheDefault(t *testing.T) {
	path := referencePath(t)
	if a, b := planWith(t, path, profile.Profile{}), planWith(t, path, mustProfile(t, "rfc9110")); !reflect.DeepEqual(a.Scenarios, b.Scenarios) {
		t.Error("profile rfc9110 plans the reference spec differently from the zero profile")
	}
}

// A stale-update's racers each write their own payload, and its probe sends the second on the
// stale version: a server may answer 2xx to an If-Match write that already appears applied
// (RFC 9110 §13.1.1), so an identical resend would misjudge it.
func TestStaleUpdateRacersDiffer(t *testing.T) {
	got := byID(planFile(t, referencePath(t), "payloads"))
	for _, id := range []string{"stale-update/replaceItem", "stale-update/patchItem"} {
		sc := got[id]
		if len(sc.Racers) != sc.Concurrency {
			t.Fatalf("%s: %d racers for %d; want a payload each", id, len(sc.Racers), sc.Concurrency)
		}
		first := sc.Racers[0].Body.(map[string]any)
		var prices []float64
		for i, r := range sc.Racers {
			b := r.Body.(map[string]any)
			for k := range first {
				if k != "price" && !reflect.DeepEqual(b[k], first[k]) {
					t.Errorf("%s racer %d: %s = %v; want only price to change", id, i, k, b[k])
				}
			}
			price, _ := b["price"].(float64)
			if price < 0 || price != float64(int64(price)) || slices.Contains(prices, price) {
				t.Errorf("%s racer %d: price %v (others %v); want a distinct number of cents", id, i, b["price"], prices)
			}
			prices = append(prices, price)
		}
		pr := sc.Probe
		if pr == nil || len(pr.Calls) != 2 || !pr.SameVersion || !reflect.DeepEqual(pr.Calls[0].Body, sc.Racers[0].Body) || !reflect.DeepEqual(pr.Calls[1].Body, sc.Racers[len(sc.Racers)-1].Body) {
			t.Errorf("%s: probe %+v; want racer 0 then another racer, on one version", id, pr)
		}
		if n := noteWith(sc, "racers: "); n != "racers: 8 payloads, differing at /price, so that a loser's write shows in the state" {
			t.Errorf("%s: note %q", id, n)
		}
	}
}

// A delete-in-use's statuses accepted where declared are the dependent create's: the one that
// loses when the delete wins.
func TestDeleteInUseExpectsTheDependentsStatuses(t *testing.T) {
	spec := strings.Replace(string(openapi.Reference), "        read: getItem\n        expect: [409, 422]\n", "        read: getItem\n", 1)
	if spec == string(openapi.Reference) {
		t.Fatal("the reference spec's delete-in-use expect was not found")
	}
	for _, tt := range []struct {
		profile profile.Profile
		want    []int
	}{
		{profile.Profile{}, []int{409, 422}},
		{mustProfile(t, "google"), []int{400}},
	} {
		sc := byID(planYAML(t, spec, tt.profile))["delete-in-use/deleteItem"]
		if !reflect.DeepEqual(sc.Expect, tt.want) || !strings.Contains(noteWith(sc, "expect "), "losing dependent create") {
			t.Errorf("%s: expect %v, note %q; want %v", tt.profile.Name(), sc.Expect, noteWith(sc, "expect "), tt.want)
		}
	}
}
