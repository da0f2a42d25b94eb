package selftest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/conflictcheck/conflictcheck/openapi"
	"github.com/conflictcheck/conflictcheck/reference-server/fault"
	"github.com/conflictcheck/conflictcheck/reports"
	"github.com/conflictcheck/conflictcheck/suites"
)

// fakeEnv, set in this test binary's environment, makes it a fake `conflictcheck run`: its
// value is a JSON map from run name (the report dir's base name) to a fakeRun.
const fakeEnv = "SELFTEST_FAKE_CHILD"

// fakeRun is what the fake child does for one run.
type fakeRun struct {
	Code         int      // exit code
	Failed       []string // checks reported failed
	Inconclusive []string // checks reported inconclusive
	NoReport     bool     // write no report.json
	Hang         bool     // never finish
	Stderr       string   // printed on stderr before exiting
}

func TestMain(m *testing.M) {
	if spec := os.Getenv(fakeEnv); spec != "" {
		os.Exit(fakeChild(spec, os.Args[1:]))
	}
	os.Exit(m.Run())
}

// fakeChild acts as `conflictcheck run --spec F --target U... --report-dir D`: it checks that
// the spec is the reference spec and every target answers, then does what runs[base(D)] says.
func fakeChild(spec string, args []string) int {
	fail := func(format string, a ...any) int {
		fmt.Fprintf(os.Stderr, "conflictcheck: "+format+"\n", a...)
		return 2
	}
	var runs map[string]fakeRun
	if err := json.Unmarshal([]byte(spec), &runs); err != nil {
		return fail("fake: %v", err)
	}
	if len(args) == 0 || args[0] != "run" {
		return fail("fake: want the run command, got %q", args)
	}
	var specFile, reportDir string
	var targets []string
	for i := 1; i+1 < len(args); i += 2 {
		switch args[i] {
		case "--spec":
			specFile = args[i+1]
		case "--target":
			targets = append(targets, args[i+1])
		case "--report-dir":
			reportDir = args[i+1]
		default:
			return fail("fake: unexpected flag %q", args[i])
		}
	}
	if b, err := os.ReadFile(specFile); err != nil || !bytes.Equal(b, openapi.Reference) {
		return fail("fake: --spec %q is not the reference spec (%v)", specFile, err)
	}
	if len(targets) != 1 {
		return fail("fake: want one target with the memory store, got %q", targets)
	}
	for _, t := range targets {
		res, err := http.Get(t + "/items")
		if err != nil {
			return fail("fake: %v", err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			return fail("fake: GET %s/items = %d", t, res.StatusCode)
		}
	}
	r, ok := runs[filepath.Base(reportDir)]
	if !ok {
		return fail("fake: no fake run for %s", reportDir)
	}
	if r.Hang {
		time.Sleep(time.Hour)
	}
	if !r.NoReport {
		statuses := map[string]suites.Status{}
		for _, id := range r.Inconclusive {
			statuses[id] = suites.Inconclusive
		}
		for _, id := range r.Failed {
			statuses[id] = suites.Failed
		}
		sc := scenario(statuses)
		if err := os.MkdirAll(reportDir, 0o755); err != nil {
			return fail("fake: %v", err)
		}
		if err := reports.WriteJSON(reportDir, reports.Run{Scenarios: []reports.Scenario{sc}}); err != nil {
			return fail("fake: %v", err)
		}
	}
	fmt.Fprint(os.Stderr, r.Stderr)
	return r.Code
}

// fakeConfig runs this test binary as the fake child, doing runs.
func fakeConfig(t *testing.T, runs map[string]fakeRun, faults ...fault.Name) Config {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	spec, err := json.Marshal(runs)
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{Executable: exe, Env: []string{fakeEnv + "=" + string(spec)}, Faults: []fault.Fault{}}
	for _, f := range faults {
		cfg.Faults = append(cfg.Faults, mustFault(t, f))
	}
	return cfg
}

func TestRunResults(t *testing.T) {
	caught := fakeRun{Code: 1, Failed: []string{"single-winner"}}
	tests := []struct {
		name   string
		runs   map[string]fakeRun
		faults []fault.Name
		want   string // the --json result
		passed bool
	}{
		{
			name:   "every fault caught, per-replica-lock skipped on memory",
			runs:   map[string]fakeRun{"clean": {}, "race": caught, "idempotency-race": caught},
			faults: []fault.Name{fault.Race, fault.PerReplicaLock, fault.IdempotencyRace},
			want: `{"clean":"pass","faults":{` +
				`"idempotency-race":{"expected":["single-winner"],"failed":["single-winner"],"caught":true},` +
				`"race":{"expected":["single-winner","state-intact","linearizable"],"failed":["single-winner"],"caught":true}},` +
				`"skipped":{"per-replica-lock":"needs --store postgres"}}`,
			passed: true,
		},
		{
			name: "a fault not caught (only an unexpected check and an inconclusive expected one)",
			runs: map[string]fakeRun{
				"clean":    {},
				"race":     caught,
				"bad-body": {Code: 1, Failed: []string{"state-intact"}, Inconclusive: []string{"conflict-body"}},
			},
			faults: []fault.Name{fault.Race, fault.BadBody},
			want: `{"clean":"pass","faults":{` +
				`"bad-body":{"expected":["conflict-body"],"failed":["state-intact"],"caught":false},` +
				`"race":{"expected":["single-winner","state-intact","linearizable"],"failed":["single-winner"],"caught":true}},` +
				`"skipped":{}}`,
			passed: false,
		},
		{
			name:   "a fault whose run passed",
			runs:   map[string]fakeRun{"clean": {}, "stale-etag": {}},
			faults: []fault.Name{fault.StaleETag},
			want:   `{"clean":"pass","faults":{"stale-etag":{"expected":["retry-succeeds"],"failed":[],"caught":false}},"skipped":{}}`,
			passed: false,
		},
		{
			name:   "the clean run exits 1",
			runs:   map[string]fakeRun{"clean": {Code: 1, Inconclusive: []string{"single-winner"}}, "race": caught},
			faults: []fault.Name{fault.Race},
			want:   `{"clean":"fail","faults":{"race":{"expected":["single-winner","state-intact","linearizable"],"failed":["single-winner"],"caught":true}},"skipped":{}}`,
			passed: false,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := fakeConfig(t, tt.runs, tt.faults...)
			var progress bytes.Buffer
			cfg.Progress = &progress
			res, err := Run(t.Context(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			var b bytes.Buffer
			if err := res.WriteJSON(&b); err != nil {
				t.Fatal(err)
			}
			if got := strings.TrimSpace(b.String()); got != tt.want {
				t.Errorf("JSON:\n%s\nwant:\n%s", got, tt.want)
			}
			if got := res.Passed(); got != tt.passed {
				t.Errorf("Passed() = %v; want %v", got, tt.passed)
			}
			// A header line, then a line per run as it finished, in order.
			lines := strings.Split(strings.TrimSpace(progress.String()), "\n")
			if len(lines) != 2+len(tt.faults) {
				t.Fatalf("progress has %d lines; want %d:\n%s", len(lines), 2+len(tt.faults), progress.String())
			}
			if want := fmt.Sprintf("selftest: memory store, 1 replica; a clean run and %d faults", len(tt.faults)); lines[0] != want {
				t.Errorf("progress header %q; want %q", lines[0], want)
			}
			names := append([]string{"clean"}, func() (s []string) {
				for _, f := range tt.faults {
					s = append(s, string(f))
				}
				return s
			}()...)
			for i, name := range names {
				if !strings.HasPrefix(lines[i+1], "selftest: "+name+" ") {
					t.Errorf("progress line %d = %q; want it about %s", i+1, lines[i+1], name)
				}
			}
		})
	}
}

func TestRunInfrastructureErrors(t *testing.T) {
	tests := []struct {
		name    string
		runs    map[string]fakeRun
		timeout time.Duration
		want    []string // substrings of the error
	}{
		{
			name: "a child exits 2",
			runs: map[string]fakeRun{"clean": {}, "race": {Code: 2, NoReport: true, Stderr: "warming up\nconflictcheck: target unreachable\n"}},
			want: []string{"race: ", "exited 2", ": conflictcheck: target unreachable"},
		},
		{
			name: "a child exits 2 on the clean run",
			runs: map[string]fakeRun{"clean": {Code: 2, Stderr: "conflictcheck: nothing to check\n"}},
			want: []string{"clean: ", "exited 2", "nothing to check"},
		},
		{
			name: "a child writes no report",
			runs: map[string]fakeRun{"clean": {}, "race": {Code: 1, NoReport: true}},
			want: []string{"race: ", "no usable report", "report.json"},
		},
		{
			name: "a child exits with another code",
			runs: map[string]fakeRun{"clean": {}, "race": {Code: 3, Stderr: "panic: boom\n"}},
			want: []string{"race: ", "exit status 3", "panic: boom"},
		},
		{
			name:    "a child hangs and is killed",
			runs:    map[string]fakeRun{"clean": {Hang: true}},
			timeout: 500 * time.Millisecond,
			want:    []string{"clean: ", "did not finish within 500ms and was killed"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := fakeConfig(t, tt.runs, fault.Race)
			cfg.Timeout = tt.timeout
			res, err := Run(t.Context(), cfg)
			if err == nil {
				t.Fatalf("Run succeeded with %+v; want an error", res)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error %q spans lines", err)
			}
		})
	}
}

func TestRunConfigErrors(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"unknown store", Config{Executable: exe, Store: "nope"}, `unknown --store "nope" (one of: memory, postgres)`},
		{"postgres without a URL", Config{Executable: exe, Store: StorePostgres}, "--store postgres needs --database-url (or $DATABASE_URL)"},
		{"no executable", Config{}, "no conflictcheck executable"},
		{
			"unreachable database",
			Config{Executable: exe, Store: StorePostgres, DatabaseURL: "postgres://u:s3cret@127.0.0.1:1/inventory?connect_timeout=2"},
			"clean: start the reference server (postgres store): open postgres 127.0.0.1:1/inventory",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Run(t.Context(), tt.cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Run error = %v; want it to contain %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "s3cret") {
				t.Errorf("error %q shows the database password", err)
			}
		})
	}
}
