package main

import (
	"crypto/tls"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/conflictcheck/conflictcheck/internal/reftest"
	"github.com/conflictcheck/conflictcheck/internal/testcerts"
	"github.com/conflictcheck/conflictcheck/reference-server/fault"
)

// checkNoSecret fails when a secret is on stdout, stderr or in any file under dir.
func checkNoSecret(t *testing.T, dir string, res cliResult, secrets ...string) {
	t.Helper()
	outputs := map[string]string{"stdout": res.stdout, "stderr": res.stderr}
	for _, f := range filesUnder(t, dir) {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		outputs[f] = string(b)
	}
	for where, text := range outputs {
		for _, s := range secrets {
			if strings.Contains(text, s) {
				t.Errorf("%s holds the secret %q", where, s)
			}
		}
	}
}

// TestRunHeaderSources: a target that wants three credentials gets them from a
// CONFLICTCHECK_HEADER_ variable, --header-file and --header (which wins on a name), and none
// of their values shows anywhere.
func TestRunHeaderSources(t *testing.T) {
	want := http.Header{"X-Api-Key": {"env-k3y"}, "X-Tenant": {"file-t3nant"}, "Authorization": {"Bearer flag-t0ken"}}
	var mu sync.Mutex
	var refused []string
	target, _ := guarded(t, func(w http.ResponseWriter, r *http.Request, next http.Handler) {
		for name := range want {
			if r.Header.Get(name) != want.Get(name) {
				mu.Lock()
				refused = append(refused, fmt.Sprintf("%s %s: %s", r.Method, r.URL, name))
				mu.Unlock()
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
	dir, secrets := t.TempDir(), filepath.Join(t.TempDir(), "headers")
	writeFile(t, secrets, "# credentials\nX-Tenant: file-t3nant\nAuthorization: Bearer file-loses\n\n")
	res := runCLIEnv(t, dir, []string{"CONFLICTCHECK_HEADER_X_API_KEY=env-k3y", "CONFLICTCHECK_HEADER_X_TENANT=env-loses"},
		"run", "--spec", referenceSpecFile(t, dir), "--target", target, "--focus", "stale-update replaceItem",
		"--header-file", secrets, "--header", "Authorization: Bearer flag-t0ken")
	if res.code != exitOK {
		t.Fatalf("exit %d, refused %v\nstdout:\n%s\nstderr:\n%s", res.code, refused, res.stdout, res.stderr)
	}
	checkNoSecret(t, dir, res, "env-k3y", "file-t3nant", "flag-t0ken", "env-loses", "file-loses")
}

// TestRunAuthCommand: a token that the target rotates mid-run is fetched again by
// --auth-command after the 401, the run passes and says so, and no token shows anywhere.
func TestRunAuthCommand(t *testing.T) {
	dir, tokenFile := t.TempDir(), filepath.Join(t.TempDir(), "token")
	var mu sync.Mutex
	current, served := 1, 0
	issue := func() { writeFile(t, tokenFile, fmt.Sprintf("tok3n-%d\n", current)) }
	issue()
	target, _ := guarded(t, func(w http.ResponseWriter, r *http.Request, next http.Handler) {
		mu.Lock()
		if served++; served%40 == 0 { // the token expires every 40 requests
			current++
			issue()
		}
		ok := r.Header.Get("Authorization") == fmt.Sprintf("Bearer tok3n-%d", current)
		mu.Unlock()
		if !ok {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r)
	})
	res := runCLI(t, dir, "run", "--spec", referenceSpecFile(t, dir), "--target", target,
		"--label-filter", "stale-update || duplicate-create", "--auth-command", `printf 'Bearer %s\n' "$(cat '`+tokenFile+`')"`)
	if res.code != exitOK || !strings.Contains(res.stdout, "after a 401") {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", res.code, res.stdout, res.stderr)
	}
	run := readReport(t, dir)
	renewed := 0
	for _, s := range run.Scenarios {
		renewed += s.AuthRefreshes
	}
	if renewed == 0 || current < 2 {
		t.Errorf("%d renewals for %d tokens", renewed, current)
	}
	checkNoSecret(t, dir, res, "tok3n-")
}

// TestRunMutualTLS: a target that demands a client certificate from a private CA is checked
// with --cert, --key and --ca; without --cert the preflight refuses it in one line.
func TestRunMutualTLS(t *testing.T) {
	dir := t.TempDir()
	files := testcerts.New(t, dir)
	ref := reftest.Start(t, fault.None, 0)
	srv := httptest.NewUnstartedServer(ref.Config.Handler)
	srv.TLS = files.Server.Clone()
	srv.TLS.ClientAuth = tls.RequireAndVerifyClientCert
	srv.EnableHTTP2 = true // h2's single-packet release overlaps racers most reliably
	srv.StartTLS()
	t.Cleanup(srv.Close)

	spec := referenceSpecFile(t, dir)
	res := runCLI(t, dir, "run", "--spec", spec, "--target", srv.URL, "--focus", "stale-update replaceItem",
		"--cert", files.ClientCert, "--key", files.ClientKey, "--ca", files.CA)
	if res.code != exitOK {
		t.Fatalf("with the client certificate: exit %d\nstdout:\n%s\nstderr:\n%s", res.code, res.stdout, res.stderr)
	}
	res = runCLI(t, dir, "run", "--spec", spec, "--target", srv.URL, "--ca", files.CA)
	if res.code != exitBadInput {
		t.Fatalf("without the client certificate: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", res.code, exitBadInput, res.stdout, res.stderr)
	}
	checkOneErrorLine(t, res.stderr)
}

// TestRunAuthErrors: broken credentials are one line and exit 2 before anything is sent.
func TestRunAuthErrors(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "bad-headers"), "X-Ok: fine\nno colon here s3cret\n")
	for _, tc := range []struct {
		name string
		env  []string
		args []string
		want string
	}{
		{"command fails", nil, []string{"--auth-command", "echo denied >&2; exit 3"}, "--auth-command: exit status 3: denied"},
		{"command prints nothing", nil, []string{"--auth-command", "true"}, "--auth-command: printed nothing"},
		{"refresh without command", nil, []string{"--auth-refresh", "1m"}, "--auth-refresh needs --auth-command"},
		{"header file line", nil, []string{"--header-file", "bad-headers"}, "--header-file bad-headers line 2"},
		{"header file missing", nil, []string{"--header-file", "nope"}, "--header-file"},
		{"empty variable", []string{"CONFLICTCHECK_HEADER_X_KEY="}, nil, "CONFLICTCHECK_HEADER_X_KEY"},
		{"cert without key", nil, []string{"--cert", "c.pem"}, "--cert and --key go together"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := runCLIEnv(t, dir, tc.env, append([]string{"run"}, tc.args...)...)
			if res.code != exitBadInput || !strings.Contains(res.stderr, tc.want) {
				t.Fatalf("exit %d, stderr %q; want %d and %q", res.code, res.stderr, exitBadInput, tc.want)
			}
			checkOneErrorLine(t, res.stderr)
			if strings.Contains(res.stderr, "s3cret") {
				t.Errorf("stderr quotes the header file's value: %q", res.stderr)
			}
		})
	}
}
