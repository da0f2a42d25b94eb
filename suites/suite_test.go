package suites

import (
	"net/http/httptest"
	"testing"
	"time"

	"github.com/onsi/ginkgo/v2"

	"github.com/conflictcheck/conflictcheck/internal/engine"
	"github.com/conflictcheck/conflictcheck/internal/scenario"
	"github.com/conflictcheck/conflictcheck/reference-server/api"
	"github.com/conflictcheck/conflictcheck/reference-server/fault"
	"github.com/conflictcheck/conflictcheck/reference-server/server"
)

// TestSuite runs the whole spec tree against the embedded reference server (memory store, no
// fault) on 127.0.0.1: every check holds or does not apply. Ginkgo's flags work through
// go test, e.g. `go test ./suites -run TestSuite -ginkgo.label-filter=single-winner -ginkgo.v`.
func TestSuite(t *testing.T) {
	doc, p := reference(t)
	st, err := server.OpenStore(t.Context(), server.Config{Store: "memory"}, fault.Fault{})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(api.New(st, api.Options{}))
	defer srv.Close()
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
