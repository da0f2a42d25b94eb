package reports

import (
	"testing"
	"time"

	"github.com/conflictcheck/conflictcheck/internal/scenario"
	"github.com/conflictcheck/conflictcheck/suites"
)

func TestPushBack(t *testing.T) {
	for _, tc := range []struct {
		name string
		res  scenario.Result
		want string
	}{
		{"none", scenario.Result{}, ""},
		{"429s", scenario.Result{Backoffs: []scenario.Backoff{{Phase: "race", RetryAfter: "1", Waited: time.Second}, {Phase: "createItem", Waited: 1500 * time.Millisecond}}}, "2× 429 waited out (2.5s)"},
		{"401", scenario.Result{AuthRefreshes: 1}, "credentials renewed 1× after a 401"},
		{"both", scenario.Result{AuthRefreshes: 2, Backoffs: []scenario.Backoff{{Waited: time.Second}}}, "1× 429 waited out (1s); credentials renewed 2× after a 401"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			run := FromOutcomes(Meta{}, []suites.Outcome{{Scenario: "s", Result: tc.res}})
			s := run.Scenarios[0]
			if got := s.PushBack(); got != tc.want {
				t.Errorf("PushBack() = %q, want %q", got, tc.want)
			}
			if len(s.Backoffs) != len(tc.res.Backoffs) || s.AuthRefreshes != tc.res.AuthRefreshes {
				t.Errorf("report scenario %+v lost the result's pushback", s)
			}
		})
	}
}
