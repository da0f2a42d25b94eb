// Package reftest serves the reference API in-process on 127.0.0.1 for the tests of the
// packages that check it (scenario runner, suites), one fault at a time.
package reftest

import (
	"net/http/httptest"
	"testing"
	"time"

	"github.com/conflictcheck/conflictcheck/reference-server/api"
	"github.com/conflictcheck/conflictcheck/reference-server/fault"
	"github.com/conflictcheck/conflictcheck/reference-server/server"
)

// Start serves the reference API on a memory store with fault f (fault.None for the correct
// server) and the racy faults' check-then-act gap window, on a loopback httptest server that is
// closed when t ends.
func Start(t testing.TB, f fault.Name, window time.Duration) *httptest.Server {
	t.Helper()
	ft, err := fault.Parse(string(f))
	if err != nil {
		t.Fatal(err)
	}
	st, err := server.OpenStore(t.Context(), server.Config{Store: "memory", RaceWindow: window}, ft)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(api.New(st, api.Options{Fault: f}))
	t.Cleanup(srv.Close)
	return srv
}
