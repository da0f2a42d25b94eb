package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/conflictcheck/conflictcheck/internal/fakeapi"
	"github.com/conflictcheck/conflictcheck/suites"
)

// TestRunConventions runs the CLI, as a user would, against APIs that follow conventions
// other than the reference server's, with the profile that matches them, and shows that
// --expect and --profile change the verdict where the API's answers differ from them.
func TestRunConventions(t *testing.T) {
	tests := []struct {
		name    string
		opts    fakeapi.Options
		args    []string
		code    int
		failing string // a check that must fail, when code is exitFailed
	}{
		{"303 for a duplicate create", fakeapi.Options{DuplicateSeeOther: true, IDInLocationOnly: true}, nil, exitOK, ""},
		{"303 where --expect wants 409", fakeapi.Options{DuplicateSeeOther: true}, []string{"--expect", "duplicate-create=409"}, exitFailed, suites.CheckConflictStatus},
		{"kubernetes resourceVersion", fakeapi.Options{VersionField: fakeapi.VersionResourceVersion, ConnectionClose: true}, []string{"--profile", "kubernetes"}, exitOK, ""},
		{"couchdb _rev, text rejections", fakeapi.Options{VersionField: fakeapi.VersionRev, RejectBody: fakeapi.RejectText, CreateStatus: 200}, []string{"--profile", "couchdb"}, exitOK, ""},
		{"PUT-to-create, empty rejections", fakeapi.Options{PUTCreate: true, RejectBody: fakeapi.RejectEmpty}, nil, exitOK, ""},
		{"412 for If-Match where --expect wants 409", fakeapi.Options{}, []string{"--profile", "google", "--expect", "stale-update=409"}, exitFailed, suites.CheckConflictStatus},
		{"a lost update behind a 200-on-create API", fakeapi.Options{CreateStatus: 200, Fault: fakeapi.LostUpdate}, nil, exitFailed, suites.CheckSingleWinner},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			api := fakeapi.Start(t, tc.opts)
			dir := t.TempDir()
			writeFile(t, filepath.Join(dir, "api.yaml"), fakeapi.Spec(tc.opts))
			args := append([]string{"run", "--spec", "api.yaml", "--target", api.URL}, tc.args...)
			res := runCLI(t, dir, args...)
			if res.code != tc.code {
				t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", res.code, tc.code, res.stdout, res.stderr)
			}
			run := readReport(t, dir)
			if tc.failing != "" && len(scenariosWhere(run, tc.failing, suites.Failed)) == 0 {
				t.Errorf("no scenario failed %s:\n%s", tc.failing, res.stdout)
			}
			for _, s := range run.Scenarios {
				if len(s.Leftovers) > 0 {
					t.Errorf("%s left %v behind", s.Title(), s.Leftovers)
				}
			}
			if n := api.Live(); n != 0 {
				t.Errorf("%d widgets left on the API after the run", n)
			}
			if strings.Contains(res.stderr, "panic") {
				t.Errorf("stderr:\n%s", res.stderr)
			}
		})
	}
}
