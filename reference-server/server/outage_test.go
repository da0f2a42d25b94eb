package server_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/conflictcheck/conflictcheck/internal/pgtest"
	"github.com/conflictcheck/conflictcheck/reference-server/server"
)

// TestDatabaseOutageAnswers503 stops PostgreSQL under a running server: requests must get a
// prompt 503 problem with Retry-After, never a 500 or a hang.
func TestDatabaseOutageAnswers503(t *testing.T) {
	pg := pgtest.Start(t)
	base := startServers(t, 1, server.Config{Store: "postgres", DatabaseURL: pg.CreateDB(t)})[0]
	hc := &http.Client{Timeout: 20 * time.Second}
	res, err := hc.Post(base+"/items", "application/json", strings.NewReader(`{"sku":"OUT","name":"n","price":1,"stock":1}`))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 201 {
		t.Fatalf("create before the outage: %d", res.StatusCode)
	}
	if err := pg.Stop(); err != nil {
		t.Fatal(err)
	}
	for _, req := range []struct{ method, path, body string }{
		{"GET", "/items?sku=OUT", ""},
		{"POST", "/items", `{"sku":"OUT2","name":"n","price":1,"stock":1}`},
		{"GET", "/items?sku=OUT", ""},
	} {
		start := time.Now()
		r, _ := http.NewRequest(req.method, base+req.path, strings.NewReader(req.body))
		r.Header.Set("Content-Type", "application/json")
		res, err := hc.Do(r)
		if err != nil {
			t.Fatalf("%s %s during the outage: %v", req.method, req.path, err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		var p struct{ Status int }
		_ = json.Unmarshal(body, &p)
		if res.StatusCode != 503 || p.Status != 503 || res.Header.Get("Retry-After") == "" {
			t.Errorf("%s %s during the outage = %d %s (Retry-After %q); want a 503 problem with Retry-After",
				req.method, req.path, res.StatusCode, body, res.Header.Get("Retry-After"))
		}
		if d := time.Since(start); d > 12*time.Second {
			t.Errorf("%s %s took %v to fail", req.method, req.path, d)
		}
	}
}
