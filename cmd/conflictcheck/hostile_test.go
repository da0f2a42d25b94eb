package main

import (
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/conflictcheck/conflictcheck/internal/preflight/hostile"
	"github.com/conflictcheck/conflictcheck/reports"
	"github.com/conflictcheck/conflictcheck/suites"
)

// testDNS, set in a CLI subprocess's environment, is the address of the loopback DNS server
// its host names are looked up on instead of the system's.
const testDNS = "CONFLICTCHECK_TEST_DNS"

// useTestDNS points net.DefaultResolver, which the engine dials through, at the DNS server named
// by $CONFLICTCHECK_TEST_DNS when that is set. TestMain calls it first, so that a CLI subprocess
// that must fail a lookup asks only loopback.
func useTestDNS() {
	if addr := os.Getenv(testDNS); addr != "" {
		net.DefaultResolver = hostile.Resolver(addr)
	}
}

// hostileBound is a generous upper bound on a run against a hostile target with --timeout 1s:
// a guard against hangs, not a measurement.
const hostileBound = 60 * time.Second

// TestRunHostileTargets: a target that is not a working API at all ends the run before any
// scenario, within the timeouts: exit 2, one line on stderr naming the target and the problem,
// nothing on stdout, no report written.
func TestRunHostileTargets(t *testing.T) {
	dnsAddr := hostile.NXDOMAIN(t)
	cases := []struct {
		name   string
		target string
		env    []string
		want   string
	}{
		{"connection refused", hostile.Refused(t), nil, ": connection refused: is the API running there?"},
		{"host does not resolve", "http://nope.invalid:8080", []string{testDNS + "=" + dnsAddr}, ": host nope.invalid does not resolve"},
		{"untrusted certificate", hostile.TLS(t, hostile.Status(http.StatusNotFound, nil)).URL, nil,
			"its TLS certificate is not trusted (x509: certificate signed by unknown authority): pass --ca FILE with the CA that signed it, or --insecure to skip verification"},
		{"accepts and never answers", hostile.Silent(t), nil, ": no answer within 1s (--timeout)"},
		{"resets mid-response", hostile.Reset(t), nil, ": the connection was reset before a complete response"},
		{"HTML 200 to everything", hostile.Serve(t, hostile.HTML).URL, nil,
			"with 200 OK text/html but the spec declares application/json: is --target the API's base URL (with its path prefix)?"},
		{"5xx storm", hostile.Serve(t, hostile.Status(http.StatusServiceUnavailable, nil)).URL, nil,
			"with 503 Service Unavailable, 3 times in a row: the API is failing"},
		{"gigantic body", hostile.Serve(t, hostile.Huge(hostile.HugeSize, nil)).URL, nil, "with 200 OK and a body over 1 MiB"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			began := time.Now()
			res := runCLIEnv(t, dir, c.env, "run", "--spec", referenceSpecFile(t, dir), "--target", c.target, "--timeout", "1s")
			if d := time.Since(began); d > hostileBound {
				t.Errorf("the run took %v; want it bounded by the timeouts", d)
			}
			checkRefused(t, dir, res, "target "+c.target, c.want)
		})
	}
}

// TestRunMisbehavingWrites: a target that answers the preflight read like the API but
// misbehaves on every write fails the run's checks (exit 1, not 2, and no hang), and report.json
// holds the evidence: the writes with their status or transport error.
func TestRunMisbehavingWrites(t *testing.T) {
	cases := []struct {
		m        hostile.Misbehaviour
		evidence func(x reports.Exchange) bool
	}{
		{hostile.ResetWrites, func(x reports.Exchange) bool { return strings.HasPrefix(x.Error, "reset: ") }},
		{hostile.FailWrites, func(x reports.Exchange) bool { return x.Status == http.StatusInternalServerError }},
		{hostile.HTMLWrites, func(x reports.Exchange) bool {
			return x.Status == http.StatusOK && strings.HasPrefix(x.Header.Get("Content-Type"), "text/html")
		}},
		{hostile.HugeWrites, func(x reports.Exchange) bool { return x.Status == http.StatusOK && x.Truncated }},
		{hostile.SilentWrites, func(x reports.Exchange) bool { return strings.HasPrefix(x.Error, "timeout: ") }},
	}
	for _, c := range cases {
		t.Run(string(c.m), func(t *testing.T) {
			t.Parallel()
			target := hostile.Serve(t, hostile.Writes(c.m)).URL
			dir := t.TempDir()
			began := time.Now()
			res := runCLI(t, dir, "run", "--spec", referenceSpecFile(t, dir), "--target", target,
				"--timeout", "1s", "--attempts", "1", "--concurrency", "2", "--focus", "createItem")
			if d := time.Since(began); d > hostileBound {
				t.Errorf("the run took %v; want it bounded by the timeouts", d)
			}
			if res.code != exitFailed {
				t.Fatalf("exit %d; want %d\nstdout:\n%s\nstderr:\n%s", res.code, exitFailed, res.stdout, res.stderr)
			}
			run := readReport(t, dir)
			if len(run.Scenarios) != 1 {
				t.Fatalf("report.json holds %d scenarios; want createItem's alone", len(run.Scenarios))
			}
			sc := run.Scenarios[0]
			if sc.Verdict == suites.VerdictPass || !run.Failed() {
				t.Errorf("verdict %s, summary %+v; want the scenario to fail or be inconclusive", sc.Verdict, run.Summary)
			}
			if !slices.ContainsFunc(sc.Exchanges, func(x reports.Exchange) bool { return x.Method == http.MethodPost && c.evidence(x) }) {
				t.Errorf("report.json holds no POST showing the misbehaviour; exchanges:\n%s", exchangeLines(sc.Exchanges))
			}
		})
	}
}

// exchangeLines is one line per exchange, for a failure message.
func exchangeLines(xs []reports.Exchange) string {
	var b strings.Builder
	for _, x := range xs {
		b.WriteString(x.Phase + " " + x.Method + " " + x.URL + " → ")
		if x.Error != "" {
			b.WriteString(x.Error)
		} else {
			b.WriteString(http.StatusText(x.Status) + " " + x.Header.Get("Content-Type"))
		}
		b.WriteString("\n")
	}
	return b.String()
}
