package main

import (
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/conflictcheck/conflictcheck/internal/engine"
	"github.com/conflictcheck/conflictcheck/internal/preflight/hostile"
	"github.com/conflictcheck/conflictcheck/openapi"
	"github.com/conflictcheck/conflictcheck/reference-server/server"
	"github.com/conflictcheck/conflictcheck/reports"
	"github.com/conflictcheck/conflictcheck/suites"
)

// TestRunReferenceServer: `conflictcheck run` with no flags checks the embedded reference server
// on loopback, prints a line per scenario and a summary, exits 0, and writes junit.xml and
// report.json into the default report dir.
func TestRunReferenceServer(t *testing.T) {
	dir := t.TempDir()
	res := runCLI(t, dir, "run")
	if res.code != exitOK {
		t.Fatalf("exit %d; want 0\nstdout:\n%s\nstderr:\n%s", res.code, res.stdout, res.stderr)
	}
	run := readReport(t, dir)
	if run.Summary.Scenarios == 0 || run.Summary.Failed+run.Summary.Inconclusive > 0 {
		t.Errorf("summary %+v; want scenarios and no failed or inconclusive check", run.Summary)
	}
	for _, sc := range run.Scenarios {
		if !strings.Contains(res.stdout, "PASS         "+sc.Name+"\n") {
			t.Errorf("stdout has no PASS line for %s:\n%s", sc.Name, res.stdout)
		}
	}
	if !strings.Contains(res.stdout, "8 scenarios: 8 pass, 0 fail, 0 inconclusive;") {
		t.Errorf("stdout has no summary line:\n%s", res.stdout)
	}
	junit, err := os.ReadFile(filepath.Join(dir, DefaultReportDir, "junit.xml"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(junit), "<testsuites") || !strings.Contains(string(junit), "single-winner") {
		t.Errorf("junit.xml holds no test suite with the checks:\n%.400s", junit)
	}
	if res.stderr != "" {
		t.Errorf("stderr not empty:\n%s", res.stderr)
	}
}

// The secret of the malformed --header cases: no piece of it may reach stderr.
const headerSecret = "s3cr3t-token-123"

// TestRunPreflightErrors: every problem found before the suite runs exits 2 with one line on
// stderr ("conflictcheck: ..."), no stack trace, nothing on stdout and no report written.
func TestRunPreflightErrors(t *testing.T) {
	noConflicts := "openapi: 3.0.3\ninfo: {title: t, version: \"1\"}\npaths:\n  /ping:\n    get:\n      responses:\n        \"200\": {description: ok}\n"
	closed := hostile.Refused(t)
	tests := []struct {
		name  string
		files map[string]string // written into the working folder first
		args  []string
		want  []string // all in the stderr line
	}{
		{"missing spec", nil, []string{"--spec", "missing.yaml"}, []string{"missing.yaml"}},
		{"spec is a folder", map[string]string{"sub/x": ""}, []string{"--spec", "sub"}, []string{"sub"}},
		{"malformed spec", map[string]string{"bad.yaml": "not: [valid\n"}, []string{"--spec", "bad.yaml"}, []string{"bad.yaml", "YAML"}},
		{"not an OpenAPI document", map[string]string{"foo.yaml": "foo: bar\n"}, []string{"--spec", "foo.yaml"}, []string{"foo.yaml", "OpenAPI"}},
		{"nothing to check", map[string]string{"plain.yaml": noConflicts}, []string{"--spec", "plain.yaml"}, []string{"nothing to check", "plain.yaml", "add x-conflict"}},
		{"target without spec", nil, []string{"--target", closed}, []string{"--target needs --spec"}},
		{"unreachable target", map[string]string{"ref.yaml": string(openapi.Reference)}, []string{"--spec", "ref.yaml", "--target", closed}, []string{closed}},
		{"label filter syntax", nil, []string{"--label-filter", "(single-winner"}, []string{"--label-filter", "(single-winner"}},
		{"label filter matches nothing", nil, []string{"--label-filter", "no-such-check"}, []string{"no-such-check", "matches none"}},
		{"focus regexp", nil, []string{"--focus", "patch("}, []string{"--focus", "missing closing )"}},
		{"focus matches nothing", nil, []string{"--focus", "noSuchOperation"}, []string{"--focus", "noSuchOperation"}},
		{"focus and label filter select nothing together", nil, []string{"--label-filter", "single-winner", "--focus", "patchItem conflict-status$"}, []string{"--focus", "--label-filter"}},
		{"sync", nil, []string{"--sync", "telepathy"}, []string{"--sync", "telepathy"}},
		{"attempts 0", nil, []string{"--attempts", "0"}, []string{"--attempts", "0"}},
		{"concurrency 1", nil, []string{"--concurrency", "1"}, []string{"--concurrency", "1"}},
		{"timeout 0", nil, []string{"--timeout", "0s"}, []string{"--timeout"}},
		{"header without colon", nil, []string{"--header", "Authorization Bearer " + headerSecret}, []string{"--header", "Name: value"}},
		{"header without name", nil, []string{"--header", ": " + headerSecret}, []string{"--header", "Name: value"}},
		{"header that is only the token", nil, []string{"--header", headerSecret}, []string{"--header", "Name: value"}},
		{"header value with CRLF", nil, []string{"--header", "X-A: b\r\nX-Injected: " + headerSecret}, []string{"--header"}},
		{"ca not PEM", map[string]string{"ca.pem": "hello\n"}, []string{"--ca", "ca.pem"}, []string{"--ca", "ca.pem", "PEM"}},
		{"ca missing", nil, []string{"--ca", "nope.pem"}, []string{"--ca", "nope.pem"}},
		{"report dir is a file", map[string]string{"taken": "x"}, []string{"--report-dir", "taken"}, []string{"report dir", "taken"}},
		{"unknown flag", nil, []string{"--bogus"}, []string{"unknown flag: --bogus"}},
		{"stray argument", nil, []string{"now"}, []string{"now"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			for name, content := range tt.files {
				writeFile(t, filepath.Join(dir, name), content)
			}
			res := runCLI(t, dir, append([]string{"run"}, tt.args...)...)
			checkRefused(t, dir, res, tt.want...)
			if piece := secretPiece(res.stderr, headerSecret); piece != "" {
				t.Errorf("stderr %q shows %q, a piece of the header's secret value", res.stderr, piece)
			}
		})
	}
}

// TestRunFaultyTarget: a target that answers conflicts with 500 fails the run (exit 1), its
// scenarios' lines say FAIL with no-server-error, and report.json and junit.xml hold the
// failures.
func TestRunFaultyTarget(t *testing.T) {
	dir := t.TempDir()
	target := startReference(t, "status-500")
	res := runCLI(t, dir, "run", "--spec", referenceSpecFile(t, dir), "--target", target)
	if res.code != exitFailed {
		t.Fatalf("exit %d; want %d\nstdout:\n%s\nstderr:\n%s", res.code, exitFailed, res.stdout, res.stderr)
	}
	if res.stderr != "" {
		t.Errorf("stderr not empty:\n%s", res.stderr)
	}
	if !regexp.MustCompile(`(?m)^FAIL +\S+ \S+: .*no-server-error`).MatchString(res.stdout) {
		t.Errorf("stdout has no FAIL line naming no-server-error:\n%s", res.stdout)
	}
	run := readReport(t, dir)
	if run.Summary.Failed == 0 || !run.Failed() {
		t.Errorf("summary %+v; want failed checks", run.Summary)
	}
	if got := scenariosWhere(run, suites.CheckNoServerError, suites.Failed); len(got) == 0 {
		t.Errorf("no scenario in report.json has %s %s", suites.CheckNoServerError, suites.Failed)
	}
	checkConsole(t, res.stdout, run)
	junit, err := os.ReadFile(filepath.Join(dir, DefaultReportDir, "junit.xml"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(junit), "<failure") {
		t.Errorf("junit.xml records no failure:\n%.400s", junit)
	}
}

// TestRunSelection: --label-filter and --focus run only the checks and scenarios they select,
// and the reports list only those.
func TestRunSelection(t *testing.T) {
	allKinds := []string{
		"capacity createOrder", "delete-in-use deleteItem", "duplicate-create createItem", "idempotency-key createOrder",
		"stale-update patchItem", "stale-update replaceItem", "transition cancelOrder", "transition shipOrder",
	}
	tests := []struct {
		name      string
		args      []string
		scenarios []string // names, sorted
		checks    []string // of every scenario, in run order
	}{
		{"label filter on a check", []string{"--label-filter", "single-winner"}, allKinds, []string{suites.CheckSingleWinner}},
		{"label filter on a kind and checks", []string{"--label-filter", "stale-update && (single-winner || state-intact)"},
			[]string{"stale-update patchItem", "stale-update replaceItem"}, []string{suites.CheckSingleWinner, suites.CheckStateIntact}},
		{"focus on an operation", []string{"--focus", "patchItem"}, []string{"stale-update patchItem"}, suites.CheckIDs},
		{"focus on an operation's check", []string{"--focus", "patchItem conflict-status$"}, []string{"stale-update patchItem"}, []string{suites.CheckConflictStatus}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			res := runCLI(t, dir, append([]string{"run"}, tt.args...)...)
			if res.code != exitOK {
				t.Fatalf("exit %d; want 0\nstdout:\n%s\nstderr:\n%s", res.code, res.stdout, res.stderr)
			}
			run := readReport(t, dir)
			var names []string
			for _, sc := range run.Scenarios {
				names = append(names, sc.Name)
				var ids []string
				for _, c := range sc.Checks {
					ids = append(ids, c.ID)
				}
				if !slices.Equal(ids, tt.checks) {
					t.Errorf("scenario %s ran checks %v; want %v", sc.Name, ids, tt.checks)
				}
			}
			slices.Sort(names)
			if !slices.Equal(names, tt.scenarios) {
				t.Errorf("report.json scenarios %v; want %v", names, tt.scenarios)
			}
			if want := len(tt.scenarios) * len(tt.checks); run.Summary.Checks != want || run.Summary.Passed+run.Summary.Skipped != want {
				t.Errorf("summary %+v; want %d checks, all passed or skipped", run.Summary, want)
			}
			if lines := scenarioLines(res.stdout); len(lines) != len(tt.scenarios) {
				t.Errorf("%d scenario lines; want %d:\n%s", len(lines), len(tt.scenarios), res.stdout)
			}
			checkConsole(t, res.stdout, run)
		})
	}
}

// TestRunReplicas: several --target flags are replicas of one API; racers are spread over
// them. Two in-process servers would not share their memory store, so both name one server.
func TestRunReplicas(t *testing.T) {
	spec := referenceSpecFile(t, t.TempDir())
	target := startReference(t, "")
	tests := []struct {
		name    string
		targets []string
	}{
		{"one URL twice", []string{target, target}},
		{"with and without a trailing slash", []string{target, target + "/"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reportDir := filepath.Join(t.TempDir(), "out")
			args := []string{"run", "--spec", spec, "--report-dir", reportDir}
			for _, tg := range tt.targets {
				args = append(args, "--target", tg)
			}
			res := runCLI(t, "", args...)
			if res.code != exitOK {
				t.Fatalf("exit %d; want 0\nstdout:\n%s\nstderr:\n%s", res.code, res.stdout, res.stderr)
			}
			if want := "against " + strings.Join(tt.targets, ", ") + "\n"; !strings.Contains(res.stdout, want) {
				t.Errorf("stdout does not name both targets (%q):\n%s", want, res.stdout)
			}
			run, err := reports.ReadJSON(reportDir)
			if err != nil {
				t.Fatal(err)
			}
			if run.Failed() || run.Summary.Scenarios != 8 {
				t.Errorf("summary %+v; want 8 scenarios, none failed", run.Summary)
			}
			raced := map[string]int{}
			for _, sc := range run.Scenarios {
				for _, x := range sc.Exchanges {
					if x.Phase == "race" {
						raced[x.Target]++
					}
				}
			}
			for _, tg := range tt.targets {
				if raced[tg] == 0 {
					t.Errorf("no racer was sent to %s: %v", tg, raced)
				}
			}
		})
	}
}

// TestRunKeepsHeaderSecrets: the values of --header never reach stdout, stderr or any file the
// run writes, on a clean target and on faulty ones (failure evidence, porcupine views), even
// with -v; the headers were sent and their captured values are redacted.
func TestRunKeepsHeaderSecrets(t *testing.T) {
	headers := map[string]string{
		"Authorization": "Bearer s3cr3t-token-123",
		"X-Api-Key":     "k3y-456",
		"X-Tenant":      "t3nant-789", // no credential by its name: redacted because --header gave it
	}
	secrets := []string{"s3cr3t-token-123", "k3y-456", "t3nant-789"}
	tests := []struct {
		fault string
		code  int
	}{
		{"", exitOK},
		{"status-500", exitFailed},
		{"lost-update", exitFailed},
	}
	for _, tt := range tests {
		t.Run("fault="+tt.fault, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			args := []string{"run", "-v", "--spec", referenceSpecFile(t, dir), "--target", startReference(t, tt.fault)}
			for name, value := range headers {
				args = append(args, "--header", name+": "+value)
			}
			res := runCLI(t, dir, args...)
			if res.code != tt.code {
				t.Fatalf("exit %d; want %d\nstdout:\n%s\nstderr:\n%s", res.code, tt.code, res.stdout, res.stderr)
			}
			files := filesUnder(t, dir)
			for _, want := range []string{filepath.Join(DefaultReportDir, reports.JSONFile), filepath.Join(DefaultReportDir, "junit.xml")} {
				if !slices.Contains(files, want) {
					t.Errorf("%s not written; files: %v", want, files)
				}
			}
			checkNoSecret(t, dir, res, secrets...)
			run := readReport(t, dir)
			sent := 0
			for _, sc := range run.Scenarios {
				for _, x := range sc.Exchanges {
					for name := range headers {
						if got := x.RequestHeader.Values(name); !slices.Equal(got, []string{engine.Redacted}) {
							t.Fatalf("%s %s exchange sent %s %q; want %q", sc.Name, x.Phase, name, got, engine.Redacted)
						}
					}
					sent++
				}
			}
			if sent == 0 {
				t.Error("report.json holds no exchange: nothing shows the headers were sent")
			}
		})
	}
}

// TestRunVerbose: -v adds Ginkgo's own output; without it only conflictcheck's lines show.
func TestRunVerbose(t *testing.T) {
	ginkgoLines := []string{"Running Suite: conflictcheck", "Will run 8 of 64 specs", "conflictcheck stale-update patchItem single-winner", "Ran 8 of 64 Specs"}
	tests := []struct {
		name    string
		verbose bool
	}{
		{"quiet", false},
		{"verbose", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			args := []string{"run", "--focus", "patchItem"}
			if tt.verbose {
				args = append(args, "-v")
			}
			res := runCLI(t, "", args...)
			if res.code != exitOK {
				t.Fatalf("exit %d; want 0\nstdout:\n%s\nstderr:\n%s", res.code, res.stdout, res.stderr)
			}
			for _, l := range ginkgoLines {
				if got := strings.Contains(res.stdout, l); got != tt.verbose {
					t.Errorf("stdout holds %q: %v; want %v\n%s", l, got, tt.verbose, res.stdout)
				}
			}
			if !strings.Contains(res.stdout, "PASS         stale-update patchItem\n") {
				t.Errorf("stdout has no scenario line:\n%s", res.stdout)
			}
			if !strings.Contains(res.stdout, "1 scenarios: 1 pass, 0 fail, 0 inconclusive;") {
				t.Errorf("stdout has no summary line:\n%s", res.stdout)
			}
			if strings.Contains(res.stdout, "\x1b[") {
				t.Errorf("stdout holds terminal colour codes:\n%q", res.stdout)
			}
		})
	}
}

// startReference starts the reference server (memory store) with fault on loopback for the
// test and returns its URL.
func startReference(t *testing.T, fault string) string {
	t.Helper()
	srv, err := server.Start(t.Context(), server.Config{Addr: "127.0.0.1:0", Store: "memory", Fault: fault}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return "http://" + srv.Addr
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// filesUnder lists the regular files under root, relative to it; none when root is absent.
func filesUnder(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			rel, err := filepath.Rel(root, path)
			if err != nil {
				return err
			}
			out = append(out, rel)
		}
		return nil
	})
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return out
}

// checkRefused asserts that a run ended before its first scenario: exit 2, one error line on
// stderr saying every want, nothing on stdout and no report written under dir.
func checkRefused(t *testing.T, dir string, res cliResult, wants ...string) {
	t.Helper()
	if res.code != exitBadInput {
		t.Errorf("exit %d; want %d\nstdout:\n%s\nstderr:\n%s", res.code, exitBadInput, res.stdout, res.stderr)
	}
	checkOneErrorLine(t, res.stderr)
	for _, w := range wants {
		if !strings.Contains(res.stderr, w) {
			t.Errorf("stderr %q does not say %q", res.stderr, w)
		}
	}
	if res.stdout != "" {
		t.Errorf("stdout not empty, though no scenario should run:\n%s", res.stdout)
	}
	if files := filesUnder(t, filepath.Join(dir, DefaultReportDir)); len(files) > 0 {
		t.Errorf("report files written by a run that never started: %v", files)
	}
}

// checkOneErrorLine asserts that stderr is one "conflictcheck: ..." line, with no stack trace
// and no terminal escape codes.
func checkOneErrorLine(t *testing.T, stderr string) {
	t.Helper()
	if !strings.HasPrefix(stderr, "conflictcheck: ") || !strings.HasSuffix(stderr, "\n") || strings.Count(stderr, "\n") != 1 {
		t.Errorf("stderr is not one \"conflictcheck: \" line: %q", stderr)
	}
	for _, trace := range []string{"goroutine ", "panic", ".go:", "\x1b"} {
		if strings.Contains(stderr, trace) {
			t.Errorf("stderr holds %q (a stack trace or terminal codes): %q", trace, stderr)
		}
	}
}

// secretPiece is the first run of four or more characters of secret that text shows, or "".
func secretPiece(text, secret string) string {
	for n := len(secret); n >= 4; n-- {
		for i := 0; i+n <= len(secret); i++ {
			if strings.Contains(text, secret[i:i+n]) {
				return secret[i : i+n]
			}
		}
	}
	return ""
}

// scenarioLines are the console's per-scenario lines.
func scenarioLines(stdout string) []string {
	return regexp.MustCompile(`(?m)^(PASS|FAIL|INCONCLUSIVE) +\S.*$`).FindAllString(stdout, -1)
}

// checkConsole asserts that stdout has one line per scenario of run with its verdict, the
// checks that did not hold named on it, and the summary line matching run.
func checkConsole(t *testing.T, stdout string, run reports.Run) {
	t.Helper()
	lines := scenarioLines(stdout)
	verdicts := map[suites.Verdict]int{}
	for _, sc := range run.Scenarios {
		verdicts[sc.Verdict]++
		prefix := fmt.Sprintf("%-12s %s", strings.ToUpper(string(sc.Verdict)), sc.Name)
		i := slices.IndexFunc(lines, func(l string) bool { return l == prefix || strings.HasPrefix(l, prefix+": ") })
		if i < 0 {
			t.Errorf("no line %q in stdout:\n%s", prefix, stdout)
			continue
		}
		for _, c := range sc.Checks {
			if c.Status == suites.Failed && !strings.Contains(lines[i], c.ID) {
				t.Errorf("line %q does not name the failed check %s", lines[i], c.ID)
			}
		}
	}
	s := run.Summary
	summary := fmt.Sprintf("%d scenarios: %d pass, %d fail, %d inconclusive; %d checks: %d passed, %d failed, %d inconclusive, %d skipped; %d requests (--max-requests %d); reports in ",
		s.Scenarios, verdicts[suites.VerdictPass], verdicts[suites.VerdictFail], verdicts[suites.VerdictInconclusive],
		s.Checks, s.Passed, s.Failed, s.Inconclusive, s.Skipped, run.Meta.Requests, run.Meta.MaxRequests)
	if !strings.Contains(stdout, "\n"+summary) {
		t.Errorf("stdout has no summary line %q:\n%s", summary, stdout)
	}
}

// scenariosWhere names the scenarios of run whose check id has status.
func scenariosWhere(run reports.Run, id string, status suites.Status) []string {
	var out []string
	for _, sc := range run.Scenarios {
		for _, c := range sc.Checks {
			if c.ID == id && c.Status == status {
				out = append(out, sc.Name)
			}
		}
	}
	return out
}
