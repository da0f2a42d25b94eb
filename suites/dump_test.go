package suites

import (
	"encoding/json"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	"github.com/conflictcheck/conflictcheck/internal/engine"
	"github.com/conflictcheck/conflictcheck/internal/plan"
	"github.com/conflictcheck/conflictcheck/internal/scenario"
	"github.com/conflictcheck/conflictcheck/internal/specload"
	"github.com/conflictcheck/conflictcheck/reference-server/api"
	"github.com/conflictcheck/conflictcheck/reference-server/fault"
	"github.com/conflictcheck/conflictcheck/reference-server/store"
)

func TestDump(t *testing.T) {
	doc, err := specload.Load(t.Context(), "../openapi/reference.yaml", specload.Options{})
	if err != nil {
		t.Fatal(err)
	}
	p, _ := plan.New(doc, plan.Options{Seed: 1})
	srv := httptest.NewServer(api.New(store.NewMemory(store.Options{}), api.Options{Fault: fault.Name(os.Getenv("FAULT"))}))
	defer srv.Close()
	env := scenario.Env{Doc: doc, Engine: engine.New(engine.Options{Strategy: engine.LastByte, Timeout: 5 * time.Second}), Targets: []string{srv.URL}}
	var out []any
	for _, sc := range p.Scenarios {
		res := scenario.Run(t.Context(), sc, env)
		out = append(out, map[string]any{"sc": sc, "res": res})
	}
	b, _ := json.MarshalIndent(out, "", " ")
	os.WriteFile("/tmp/dump"+os.Getenv("FAULT")+".json", b, 0o644)
}
