package reports

import (
	"bytes"
	"net/url"
	"path/filepath"
	"strings"

	"github.com/owenrumney/go-sarif/v3/pkg/report/v210/sarif"

	"github.com/conflictcheck/conflictcheck/suites"
)

// SARIFFile is the name of the SARIF report in a report dir.
const SARIFFile = "results.sarif"

// sarifInformationURI is where the tool that made a SARIF log is described.
const sarifInformationURI = "https://github.com/conflictcheck/conflictcheck"

// sarifFingerprint names the partial fingerprint that identifies a result across runs: its
// scenario and check, which stay the same while the spec's lines move.
const sarifFingerprint = "conflictcheckScenarioCheck/v1"

// checkRule describes one check for the rules of a SARIF log.
type checkRule struct {
	name  string
	short string
	// holds is the "holds when" column of DESIGN.md's table of checks (Markdown).
	holds string
}

// checkRules describes every check ID of suites.CheckIDs.
var checkRules = map[string]checkRule{
	suites.CheckSequentialConflict: {"SequentialConflict", "A plain conflicting request is rejected",
		"a plain, non-racing conflicting request is rejected with an expected status"},
	suites.CheckConflictStatus: {"ConflictStatus", "Every losing racer gets an expected status",
		"every losing racer got an expected status (not 2xx, 4xx-other, 5xx)"},
	suites.CheckSingleWinner: {"SingleWinner", "Exactly one racer wins",
		"exactly one racer won (capacity: no more than the invariant allows)"},
	suites.CheckNoServerError: {"NoServerError", "No server error in the scenario",
		"no 5xx anywhere in the scenario"},
	suites.CheckConflictBody: {"ConflictBody", "Rejections match the response the spec declares",
		"each rejection matches the response the spec declares for that status (content type, schema); problem+json `status` equals the HTTP status"},
	suites.CheckStateIntact: {"StateIntact", "The state after the race is the winner's write",
		"the state read after the race is the winner's write: no loser's field, no duplicate, version advanced once"},
	suites.CheckRetrySucceeds: {"RetrySucceeds", "The loser's retry succeeds after the conflict is resolved",
		"after the resolution, the loser's retry succeeds and its change is visible"},
	suites.CheckLinearizable: {"Linearizable", "The history of writes and reads is linearizable",
		"the recorded history of writes and reads is linearizable against the resource model"},
}

// WriteSARIF writes run as a SARIF 2.1.0 log to dir/results.sarif, for code-scanning
// dashboards: a rule per check ID, and a result per failed check (level error) or inconclusive
// one (warning), its message the evidence's first line, located at the operation in the spec
// (run.Meta.Spec, at the scenario's line when known).
func WriteSARIF(dir string, run Run) error {
	return writeEncoded(dir, SARIFFile, run, sarifBytes)
}

// sarifBytes is the SARIF log of run, indented JSON.
func sarifBytes(run Run) ([]byte, error) {
	log := sarif.NewReport()
	sr := sarif.NewRunWithInformationURI(junitSuiteName, sarifInformationURI)
	for _, id := range suites.CheckIDs {
		r := checkRules[id]
		text := "Holds when " + strings.ReplaceAll(r.holds, "`", "") + "."
		md := "Holds when " + r.holds + ".\n\nThe evidence of a failure (every racer's request, status and timing) is in the run's report.html and report.json."
		sr.AddRule(id).
			WithName(r.name).
			WithDescription(r.short).
			WithFullDescription(sarif.NewMultiformatMessageString().WithText(text).WithMarkdown("Holds when " + r.holds + ".")).
			WithHelp(sarif.NewMultiformatMessageString().WithText(text).WithMarkdown(md)).
			WithDefaultConfiguration(sarif.NewReportingConfiguration().WithLevel("error"))
	}
	uri := specURI(run.Meta.Spec)
	if uri != "" {
		sr.AddDistinctArtifact(uri)
	}
	for _, s := range run.Scenarios {
		for _, c := range s.Checks {
			var level string
			switch c.Status {
			case suites.Failed:
				level = "error"
			case suites.Inconclusive:
				level = "warning"
			default:
				continue
			}
			addSARIFResult(sr, s, c.ID, level, c.Message, uri)
		}
		if len(s.Checks) == 0 && s.Verdict != suites.VerdictPass {
			// No check judged the scenario, which fails the run: say so at its operation. A
			// result needs a rule, and the rules are the checks, so it goes under the first,
			// the one a scenario runs first.
			addSARIFResult(sr, s, suites.CheckIDs[0], "warning", noChecksMessage(s), uri)
		}
	}
	log.AddRun(sr)
	var b bytes.Buffer
	if err := log.PrettyWrite(&b); err != nil {
		return nil, err
	}
	b.WriteByte('\n')
	return b.Bytes(), nil
}

// addSARIFResult adds to sr the result of check on s at level, its message the first line of
// msg, located at s's operation in the spec at uri.
func addSARIFResult(sr *sarif.Run, s Scenario, check, level, msg, uri string) {
	res := sr.CreateResultForRule(check).
		WithLevel(level).
		WithMessage(sarif.NewTextMessage(evidenceHeading(msg))).
		WithPartialFingerprints(map[string]string{sarifFingerprint: s.ID + " " + check})
	loc := sarif.NewLocation()
	if uri != "" {
		phys := sarif.NewPhysicalLocation().WithArtifactLocation(sarif.NewSimpleArtifactLocation(uri).WithIndex(0))
		if s.Line > 0 {
			phys.WithRegion(sarif.NewRegion().WithStartLine(s.Line))
		}
		loc.WithPhysicalLocation(phys)
	}
	op := strings.TrimSpace(s.Method + " " + s.Path)
	if s.Operation != "" || op != "" {
		ll := sarif.NewLogicalLocation().WithKind("member")
		if s.Operation != "" {
			ll.WithName(s.Operation)
		}
		if op != "" {
			ll.WithFullyQualifiedName(op)
		}
		loc.AddLogicalLocation(ll)
	}
	res.AddLocation(loc)
}

// specURI is the URI reference of the spec a run read: a URL as given, a relative path as
// given (slashes, and percent-encoded where a URI needs it), an absolute path as a file URI.
func specURI(spec string) string {
	if spec == "" {
		return ""
	}
	if u, err := url.Parse(spec); err == nil && (u.Scheme == "http" || u.Scheme == "https" || u.Scheme == "file") {
		return spec
	}
	p := filepath.ToSlash(spec)
	if filepath.IsAbs(spec) {
		if !strings.HasPrefix(p, "/") {
			p = "/" + p // a Windows volume: C:/x → /C:/x
		}
		return (&url.URL{Scheme: "file", Path: p}).String()
	}
	return (&url.URL{Path: p}).String()
}
