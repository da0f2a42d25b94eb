package reports

import (
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/owenrumney/go-sarif/v3/pkg/report/v210/sarif"

	"github.com/conflictcheck/conflictcheck/suites"
)

// sarifRead is the part of a SARIF log the tests look at, read with encoding/json so that
// they check the file rather than the library's model.
type sarifRead struct {
	Schema  string `json:"$schema"`
	Version string `json:"version"`
	Runs    []struct {
		Tool struct {
			Driver struct {
				Name           string `json:"name"`
				InformationURI string `json:"informationUri"`
				Rules          []struct {
					ID               string `json:"id"`
					ShortDescription struct {
						Text string `json:"text"`
					} `json:"shortDescription"`
					FullDescription struct {
						Text string `json:"text"`
					} `json:"fullDescription"`
				} `json:"rules"`
			} `json:"driver"`
		} `json:"tool"`
		Results []struct {
			RuleID    string `json:"ruleId"`
			RuleIndex int    `json:"ruleIndex"`
			Level     string `json:"level"`
			Message   struct {
				Text string `json:"text"`
			} `json:"message"`
			Locations []struct {
				PhysicalLocation *struct {
					ArtifactLocation struct {
						URI string `json:"uri"`
					} `json:"artifactLocation"`
					Region *struct {
						StartLine int `json:"startLine"`
					} `json:"region"`
				} `json:"physicalLocation"`
				LogicalLocations []struct {
					Name               string `json:"name"`
					FullyQualifiedName string `json:"fullyQualifiedName"`
				} `json:"logicalLocations"`
			} `json:"locations"`
			PartialFingerprints map[string]string `json:"partialFingerprints"`
		} `json:"results"`
	} `json:"runs"`
}

func TestWriteSARIF(t *testing.T) {
	b := writeFile(t, WriteSARIF, SARIFFile, goldenRun())

	// The library reads it back, and it is valid against the SARIF 2.1.0 schema.
	rep, err := sarif.FromBytes(b)
	if err != nil {
		t.Fatalf("results.sarif does not parse: %v", err)
	}
	if err := rep.Validate(); err != nil {
		t.Fatalf("results.sarif is not valid SARIF 2.1.0: %v", err)
	}

	var log sarifRead
	if err := json.Unmarshal(b, &log); err != nil {
		t.Fatal(err)
	}
	if log.Version != "2.1.0" || !strings.HasSuffix(log.Schema, "/sarif-schema-2.1.0.json") {
		t.Errorf("version %q schema %q", log.Version, log.Schema)
	}
	if len(log.Runs) != 1 {
		t.Fatalf("%d runs, want 1", len(log.Runs))
	}
	run := log.Runs[0]
	if d := run.Tool.Driver; d.Name != "conflictcheck" || d.InformationURI != "https://github.com/conflictcheck/conflictcheck" {
		t.Errorf("driver %q %q", d.Name, d.InformationURI)
	}
	var ids []string
	for _, r := range run.Tool.Driver.Rules {
		ids = append(ids, r.ID)
		if r.ShortDescription.Text == "" || !strings.HasPrefix(r.FullDescription.Text, "Holds when ") {
			t.Errorf("rule %s: short %q full %q", r.ID, r.ShortDescription.Text, r.FullDescription.Text)
		}
	}
	if !slices.Equal(ids, suites.CheckIDs) {
		t.Errorf("rules %v, want %v", ids, suites.CheckIDs)
	}

	// A result per failed check (error) and inconclusive one (warning), and one for the
	// scenario no check judged, each at its operation in the spec.
	type result struct {
		rule, level, uri string
		line             int
		message, op      string
	}
	want := []result{
		{"conflict-status", "error", "specs/inventory.yaml", 31, "conflict-status failed for duplicate-create/createItem: 1 of 2 losers got a status outside [409]: racer 1 got 201", "createItem POST /items"},
		{"single-winner", "error", "specs/inventory.yaml", 31, "single-winner failed for duplicate-create/createItem: 2 racers won, want exactly 1", "createItem POST /items"},
		{"conflict-status", "warning", "specs/inventory.yaml", 256, "conflict-status inconclusive for stale-update/patchItem: the racers never overlapped in 3 attempts (sync barrier)", "patchItem PATCH /items/{id}"},
		{"conflict-body", "error", "specs/inventory.yaml", 0, "conflict-body failed for transition/cancel|Order: racer 1's 409 body is not problem+json: <html>```</html> & more", "cancel|Order POST /orders/{id}/cancel"},
		{"sequential-conflict", "warning", "specs/inventory.yaml", 374, "capacity/createOrder stopped before any check judged it: setup: POST /items answered 503", "createOrder POST /orders"},
	}
	var got []result
	fingerprints := map[string]bool{}
	for _, r := range run.Results {
		if len(r.Locations) != 1 || r.Locations[0].PhysicalLocation == nil || len(r.Locations[0].LogicalLocations) != 1 {
			t.Errorf("result %s %q: locations %+v", r.RuleID, r.Message.Text, r.Locations)
			continue
		}
		if r.RuleIndex < 0 || r.RuleIndex >= len(ids) || ids[r.RuleIndex] != r.RuleID {
			t.Errorf("result %s: ruleIndex %d", r.RuleID, r.RuleIndex)
		}
		loc := r.Locations[0]
		line := 0
		if loc.PhysicalLocation.Region != nil {
			line = loc.PhysicalLocation.Region.StartLine
			if line < 1 {
				t.Errorf("result %s: a region with startLine %d", r.RuleID, line)
			}
		}
		ll := loc.LogicalLocations[0]
		got = append(got, result{r.RuleID, r.Level, loc.PhysicalLocation.ArtifactLocation.URI, line, r.Message.Text, ll.Name + " " + ll.FullyQualifiedName})
		for _, f := range r.PartialFingerprints {
			if fingerprints[f] {
				t.Errorf("fingerprint %q repeated", f)
			}
			fingerprints[f] = true
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("results\n%+v\nwant\n%+v", got, want)
	}
	if len(fingerprints) != len(want) {
		t.Errorf("%d distinct fingerprints, want %d", len(fingerprints), len(want))
	}
}

func TestWriteSARIFPassingRunHasNoResults(t *testing.T) {
	run := goldenRun()
	run.Scenarios = run.Scenarios[2:3]
	run.Meta.Spec = "https://api.example.test/openapi.json"
	var log sarifRead
	if err := json.Unmarshal(writeFile(t, WriteSARIF, SARIFFile, run), &log); err != nil {
		t.Fatal(err)
	}
	if n := len(log.Runs[0].Results); n != 0 {
		t.Errorf("%d results for a passing run, want 0", n)
	}
	if len(log.Runs[0].Tool.Driver.Rules) != len(suites.CheckIDs) {
		t.Errorf("%d rules", len(log.Runs[0].Tool.Driver.Rules))
	}
}

func TestWriteSARIFError(t *testing.T) {
	err := WriteSARIF(filepath.Join(t.TempDir(), "missing"), goldenRun())
	if err == nil || !strings.Contains(err.Error(), SARIFFile) {
		t.Errorf("WriteSARIF into a missing dir: %v, want an error naming %s", err, SARIFFile)
	}
}

func TestSpecURI(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"openapi.yaml", "openapi.yaml"},
		{"api/spec v2.yaml", "api/spec%20v2.yaml"},
		{"reference.yaml (embedded)", "reference.yaml%20%28embedded%29"},
		{"../specs/x.json", "../specs/x.json"},
		{"a:b.yaml", "./a:b.yaml"},
		{"/abs/spec.yaml", "file:///abs/spec.yaml"},
		{"https://api.example.test/openapi.json?v=2", "https://api.example.test/openapi.json?v=2"},
		{"file:///x/y.yaml", "file:///x/y.yaml"},
	}
	for _, tc := range tests {
		if got := specURI(tc.in); got != tc.want {
			t.Errorf("specURI(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// TestCheckRulesMatchDesign checks that a rule describes every check, and, where the design
// document is at hand (beside the repository), that each full description is its "holds when".
func TestCheckRulesMatchDesign(t *testing.T) {
	if got := slices.Sorted(maps.Keys(checkRules)); !slices.Equal(got, slices.Sorted(slices.Values(suites.CheckIDs))) {
		t.Errorf("rules describe %v, want %v", got, suites.CheckIDs)
	}
	design, err := os.ReadFile(filepath.Join("..", "..", "shared", "DESIGN.md"))
	if err != nil {
		t.Skipf("no design document: %v", err)
	}
	for id, r := range checkRules {
		row := "| `" + id + "` | " + r.holds + " |"
		if !strings.Contains(string(design), row) {
			t.Errorf("DESIGN.md has no row %q", row)
		}
	}
}
