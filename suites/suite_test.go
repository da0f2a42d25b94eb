package suites

import (
	"testing"
	"time"

	"github.com/onsi/ginkgo/v2"

	"github.com/conflictcheck/conflictcheck/internal/engine"
	"github.com/conflictcheck/conflictcheck/internal/reftest"
	"github.com/conflictcheck/conflictcheck/internal/scenario"
	"github.com/conflictcheck/conflictcheck/reference-server/fault"
)

// TestSuite runs the whole spec tree against the embedded reference server (memory store, no
// fault) on 127.0.0.1: every check holds or does not apply. Ginkgo's flags work through
// go test, e.g. `go test ./suites -run TestSuite -ginkgo.label-filter=single-winner -ginkgo.v`.
func TestSuite(t *testing.T) {
	doc, p := reference(t)
	srv := reftest.Start(t, fault.None, fault.DefaultRaceWindow)
	Build(Config{
		Plan: p,
		Env: scenario.Env{
			Doc: doc, Plan: p, Targets: []string{srv.URL},
			Engine: engine.New(engine.Options{Timeout: 5 * time.Second}),
		},
		ReportDir: t.TempDir(),
	})
	ginkgo.RunSpecs(t, SuiteDescription)
}
