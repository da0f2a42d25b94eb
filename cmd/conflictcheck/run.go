package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/onsi/ginkgo/v2"
	"github.com/onsi/ginkgo/v2/types"
	"github.com/spf13/cobra"

	"github.com/conflictcheck/conflictcheck/internal/auth"
	"github.com/conflictcheck/conflictcheck/internal/engine"
	"github.com/conflictcheck/conflictcheck/internal/plan"
	"github.com/conflictcheck/conflictcheck/internal/preflight"
	"github.com/conflictcheck/conflictcheck/internal/scenario"
	"github.com/conflictcheck/conflictcheck/internal/specload"
	"github.com/conflictcheck/conflictcheck/openapi"
	"github.com/conflictcheck/conflictcheck/reference-server/server"
	"github.com/conflictcheck/conflictcheck/reports"
	"github.com/conflictcheck/conflictcheck/suites"
)

// errChecksFailed ends a run whose checks failed or were inconclusive: exit 1, and the summary
// already said why.
var errChecksFailed = errors.New("checks failed")

// Defaults of `conflictcheck run`'s flags.
const (
	// DefaultReportDir is where a run writes its reports.
	DefaultReportDir = "conflictcheck-report"
	// DefaultMaxRequests bounds the load a run puts on a shared staging API: the reference
	// plan needs about 160.
	DefaultMaxRequests = 2000
	// DefaultDeadline ends a run that a slow target would stretch, well within a CI job.
	DefaultDeadline = 10 * time.Minute
)

// cleanupGrace is how long an interrupted scenario may take to stop and clean up before
// Ginkgo abandons it; longer than the scenario runner's own cleanup bound.
const cleanupGrace = 90 * time.Second

// runFlags are the flags of `conflictcheck run`.
type runFlags struct {
	spec        string
	loadOpt     specload.Options
	targets     []string
	headers     []string
	headerFile  string
	authCommand string
	authRefresh time.Duration
	cert, key   string
	concurrency int
	attempts    int
	sync        string
	timeout     time.Duration
	deadline    time.Duration
	maxRequests int
	reportDir   string
	labelFilter string
	focus       []string
	insecure    bool
	ca          string
	verbose     bool
	dryRun      bool
	profiles    profileFlags
}

func newRunCmd() *cobra.Command {
	var fl runFlags
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Collide conflicting requests against an API and check every answer",
		Long: `Plan the conflict scenarios of an OpenAPI document, fire each scenario's racing
requests at the target truly simultaneously, and check the evidence: the losers were
rejected with the expected status, nobody got a 5xx, exactly one racer won, the state holds
the winner's write only, and the loser's retry succeeds once the conflict is resolved.

Without --target, the bundled reference server starts on 127.0.0.1 (memory store) and its
embedded spec is checked, so a first run needs nothing.

A run is bounded (--max-requests, --timeout, --deadline), waits out 429s, deletes what it
creates, and on a first interrupt stops firing and cleans up; --dry-run prints every request
it would send and sends none.

Exit 0 every check holds; 1 a check failed or a scenario was inconclusive (the racers never
overlapped: no evidence is not a pass) or the run was stopped; 2 a usage, spec or connection
error, or a target that does not serve the API; 130 a second interrupt.`,
		Example: `  conflictcheck run
  conflictcheck run --spec openapi.yaml --target https://staging.example.com --header "Authorization: Bearer $TOKEN"
  conflictcheck run --spec openapi.yaml --target http://10.0.0.1:8080 --target http://10.0.0.2:8080
  conflictcheck run --spec openapi.yaml --target https://staging.example.com --auth-command 'echo "Bearer $(./get-token)"' --auth-refresh 10m
  conflictcheck run --spec openapi.yaml --target https://staging.example.com --dry-run
  conflictcheck run --label-filter 'single-winner || state-intact' --report-dir out/`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runChecks(cmd.Context(), fl, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	f := cmd.Flags()
	f.StringVar(&fl.spec, "spec", "", "OpenAPI document of the target: a file path or an http(s) URL (default: the reference server's, when there is no --target)")
	f.StringArrayVar(&fl.loadOpt.Overlays, "overlay", nil, "OpenAPI Overlay 1.0 document applied before planning (repeatable, in order)")
	f.BoolVar(&fl.loadOpt.AllowRemoteRefs, "allow-remote-refs", false, "follow $refs to absolute paths, outside the spec's folder, or to URLs")
	f.StringArrayVar(&fl.targets, "target", nil, "base URL of the API (repeatable: replicas of one API; racers are spread over them); none: the reference server")
	f.StringArrayVar(&fl.headers, "header", nil, `header "Name: value" sent with every request, redacted in every report (repeatable; also `+auth.EnvPrefix+`<NAME> variables)`)
	f.StringVar(&fl.headerFile, "header-file", "", `file of "Name: value" lines sent with every request, redacted like --header (# comments)`)
	f.StringVar(&fl.authCommand, "auth-command", "", `command (run by sh) printing a header value for Authorization, or "Name: value"; re-run on a 401 and every --auth-refresh`)
	f.DurationVar(&fl.authRefresh, "auth-refresh", 0, "re-run --auth-command this often, for tokens that expire mid-run (0: only on a 401)")
	f.StringVar(&fl.cert, "cert", "", "PEM client certificate for mutual TLS (with --key)")
	f.StringVar(&fl.key, "key", "", "PEM private key of --cert")
	f.IntVar(&fl.concurrency, "concurrency", 0, "racers per scenario (default: x-conflict's concurrency, else the plan's default)")
	f.IntVar(&fl.attempts, "attempts", scenario.DefaultAttempts, "races tried per scenario until the racers overlap")
	f.StringVar(&fl.sync, "sync", string(engine.Auto), "how racers are released together: auto, h2, lastbyte or barrier")
	f.DurationVar(&fl.timeout, "timeout", engine.DefaultTimeout, "bound on each request, from its start to its last byte")
	f.DurationVar(&fl.deadline, "deadline", DefaultDeadline, "bound on the whole run: then it stops firing, cleans up and reports (0: none)")
	f.IntVar(&fl.maxRequests, "max-requests", DefaultMaxRequests, "budget of requests for the whole run, cleanup aside: past it no race is fired (0: none)")
	f.StringVar(&fl.reportDir, "report-dir", DefaultReportDir, "folder the reports are written into")
	f.StringVar(&fl.labelFilter, "label-filter", "", "run only the checks whose labels (check ID and kind) match this Ginkgo label filter")
	f.StringArrayVar(&fl.focus, "focus", nil, `run only the checks whose full name ("conflictcheck <kind> <operationId> <check>") matches this regular expression (repeatable)`)
	f.BoolVar(&fl.insecure, "insecure", false, "do not verify the target's TLS certificate")
	f.StringVar(&fl.ca, "ca", "", "PEM file of the CA that signed the target's TLS certificate")
	f.BoolVarP(&fl.verbose, "verbose", "v", false, "also print Ginkgo's verbose output")
	fl.profiles.register(f)
	f.BoolVar(&fl.dryRun, "dry-run", false, "print every request the run would send (secrets redacted) and a bound on their number; send none")
	return cmd
}

// checkNumbers checks the numeric flags of run.
func (fl runFlags) checkNumbers() error {
	switch {
	case fl.attempts < 1:
		return fmt.Errorf("--attempts must be at least 1, got %d", fl.attempts)
	case fl.maxRequests < 0:
		return fmt.Errorf("--max-requests must be 0 (no budget) or more, got %d", fl.maxRequests)
	case fl.deadline < 0:
		return fmt.Errorf("--deadline must be 0 (none) or positive, got %v", fl.deadline)
	case fl.concurrency < 0 || fl.concurrency == 1:
		return fmt.Errorf("--concurrency must be at least 2 racers, got %d", fl.concurrency)
	}
	return nil
}

// runChecks is `conflictcheck run`: a preflight whose every problem is one error (exit 2), then
// the suite.
func runChecks(ctx context.Context, fl runFlags, stdout, stderr io.Writer) error {
	// The flags are checked before --auth-command runs: a typo must not cost a token.
	if err := fl.checkNumbers(); err != nil {
		return err
	}
	creds, err := credentials(ctx, fl, os.Environ(), !fl.dryRun)
	if err != nil {
		return err
	}
	engOpts, err := engineOptions(fl, creds.Names())
	if err != nil {
		return err
	}
	ctx, stop := watchInterrupts(ctx, stderr)
	defer stop()
	if fl.deadline > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, fl.deadline, fmt.Errorf("the run's deadline (--deadline %s) passed: no more requests were fired, and what the run created was cleaned up", fl.deadline))
		defer cancel()
	}
	sel, err := parseSelection(fl)
	if err != nil {
		return err
	}
	pr, err := fl.profiles.profile()
	if err != nil {
		return err
	}

	doc, err := loadSpec(ctx, fl)
	if err != nil {
		return err
	}
	p, err := plan.New(doc, plan.Options{Concurrency: fl.concurrency, Profile: pr})
	if err != nil {
		return err
	}
	if len(p.Scenarios) == 0 {
		return fmt.Errorf("nothing to check: %s yields no conflict scenario; add x-conflict to the operations that can conflict (or an --overlay that does), see `conflictcheck plan`", doc.Source)
	}
	names, checks := sel.chosen(p)
	if checks == 0 {
		return fmt.Errorf("%s matches none of the %d checks of the %d scenarios", fl.selectors(), len(p.Scenarios)*len(suites.CheckIDs), len(p.Scenarios))
	}

	if fl.dryRun {
		env := scenario.Env{Doc: doc, Plan: p, Targets: fl.targets, Attempts: fl.attempts, Header: creds.Static}
		if creds.Command != nil {
			env.Auth = creds
		}
		if len(env.Targets) == 0 {
			env.Targets = []string{"http://127.0.0.1:<port of the bundled reference server>"}
		}
		return writeDryRun(stdout, p, env, names, engOpts.Secrets, fl.maxRequests)
	}

	targets := fl.targets
	if len(targets) == 0 {
		log := slog.New(slog.NewTextHandler(io.Discard, nil))
		if fl.verbose {
			log = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
		}
		srv, err := server.Start(ctx, server.Config{Addr: "127.0.0.1:0", Store: "memory"}, log)
		if err != nil {
			return fmt.Errorf("start the reference server: %w", err)
		}
		defer srv.Close()
		targets = []string{"http://" + srv.Addr}
	}
	engOpts.Budget = engine.NewBudget(fl.maxRequests)
	eng := engine.New(engOpts)
	for _, t := range targets {
		h, err := creds.Header(ctx)
		if err != nil {
			return err
		}
		if err := preflight.Check(ctx, eng, doc, t, h); err != nil {
			return err
		}
	}
	if err := prepareReportDir(fl.reportDir); err != nil {
		return err
	}
	if len(fl.targets) == 0 {
		fmt.Fprintf(stdout, "no --target: checking the bundled reference server at %s\n", targets[0])
	}
	fmt.Fprintf(stdout, "%d scenarios, %d checks against %s\n", len(names), checks, strings.Join(targets, ", "))

	return runSuite(suites.Config{
		Plan: p,
		Env: scenario.Env{
			Doc: doc, Plan: p, Engine: eng, Targets: targets, Auth: creds, Attempts: fl.attempts,
		},
		ReportDir: fl.reportDir,
		Context:   ctx,
	}, fl, engOpts.Budget, stdout)
}

// runSuite runs the Ginkgo suite, printing a line per scenario and a summary, and writes the
// reports.
func runSuite(cfg suites.Config, fl runFlags, budget *engine.Budget, stdout io.Writer) error {
	spentAt := "" // the first scenario the request budget stopped
	cfg.OnScenario = func(o suites.Outcome) {
		if o.Result.BudgetSpent && spentAt == "" {
			spentAt = o.Name
		}
		fmt.Fprintln(stdout, scenarioLine(o))
	}

	sc, rc := ginkgo.GinkgoConfiguration()
	// The run's own deadline and interrupts stop it (cfg.Context); Ginkgo's must not first.
	sc.Timeout = 24 * time.Hour
	if fl.deadline > 0 {
		sc.Timeout = fl.deadline + 2*cleanupGrace
	}
	sc.GracePeriod = cleanupGrace
	sc.LabelFilter = fl.labelFilter
	sc.FocusStrings = fl.focus
	rc.NoColor = true
	rc.Verbose = fl.verbose
	opts := suites.RunOptions{Suite: sc, Reporter: rc}
	if fl.verbose {
		opts.Output = stdout
	}
	var (
		run       reports.Run
		reportErr error
		special   []string
	)
	opts.AfterSuite = func(r types.Report) {
		special = r.SpecialSuiteFailureReasons
		meta := reports.Meta{
			Spec: specName(fl, cfg.Env.Doc), Title: cfg.Plan.Spec.Title, Targets: cfg.Env.Targets,
			Requests: budget.Used(), MaxRequests: budget.Max(),
		}
		if run, reportErr = reports.FromGinkgo(r, meta); reportErr != nil {
			return
		}
		run.Meta.Stopped = stopped(cfg.Context, spentAt, budget.Max())
		if err := reports.WriteAll(fl.reportDir, run); err != nil {
			reportErr = fmt.Errorf("write reports: %w", err)
		}
	}
	passed := suites.RunSpecs(cfg, opts)
	if reportErr != nil {
		return reportErr
	}
	for _, why := range special {
		fmt.Fprintf(stdout, "suite stopped: %s\n", oneLine(why))
	}
	if run.Meta.Stopped != "" {
		fmt.Fprintf(stdout, "stopped: %s\n", run.Meta.Stopped)
	}
	fmt.Fprintf(stdout, "%s; %s; reports in %s\n", run.Totals(), requestsPhrase(run.Meta), fl.reportDir)
	if !passed || run.Failed() {
		return errChecksFailed
	}
	return nil
}

// stopped says why a run ended before its end: the cause of ctx (an interrupt, the deadline),
// or the request budget, which first stopped the scenario spentAt; empty when it ran to its end.
func stopped(ctx context.Context, spentAt string, maxRequests int) string {
	switch {
	case ctx != nil && ctx.Err() != nil:
		return context.Cause(ctx).Error()
	case spentAt != "":
		return fmt.Sprintf("the request budget (--max-requests %d) ran out: scenarios from %s on did not fire all their requests", maxRequests, spentAt)
	}
	return ""
}

// requestsPhrase is how many requests the run sent, and of which budget.
func requestsPhrase(m reports.Meta) string {
	if m.MaxRequests > 0 {
		return fmt.Sprintf("%d requests (--max-requests %d)", m.Requests, m.MaxRequests)
	}
	return fmt.Sprintf("%d requests", m.Requests)
}

// scenarioLine is the console line of a finished scenario: verdict, name, and the checks that
// did not hold; a scenario that stopped early or never overlapped says so instead of listing
// every check as inconclusive.
func scenarioLine(o suites.Outcome) string {
	line := fmt.Sprintf("%-12s %s", strings.ToUpper(string(o.Verdict)), o.Name)
	failed, inconclusive := suites.IDsWith(o.Checks, suites.Failed), suites.IDsWith(o.Checks, suites.Inconclusive)
	var why []string
	if len(failed) > 0 {
		why = append(why, "failed "+strings.Join(failed, ", "))
	}
	switch {
	case o.Result.Error != "":
		why = append(why, "stopped: "+oneLine(o.Result.Error))
	case len(inconclusive) > 0 && !o.Result.Overlapped && len(o.Result.Race.Exchanges) > 0:
		why = append(why, "inconclusive: "+suites.NoOverlap(o.Result))
	case len(inconclusive) > 0:
		why = append(why, "inconclusive "+strings.Join(inconclusive, ", "))
	}
	if pb := reports.ScenarioOf(o).PushBack(); pb != "" {
		why = append(why, pb)
	}
	if len(why) > 0 {
		line += ": " + strings.Join(why, "; ")
	}
	return line
}

// prepareReportDir creates dir and removes the visualizations an earlier run left there, so
// every file in it belongs to this run (the reports themselves are overwritten).
func prepareReportDir(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create report dir: %w", err)
	}
	old, err := filepath.Glob(filepath.Join(dir, suites.VisualizationGlob))
	if err != nil {
		return fmt.Errorf("report dir %s: %w", dir, err)
	}
	for _, f := range old {
		if err := os.Remove(f); err != nil {
			return fmt.Errorf("report dir: %w", err)
		}
	}
	return nil
}

// specName is how reports locate the spec: --spec as given, or the embedded reference spec's
// path in this repository.
func specName(fl runFlags, doc *specload.Document) string {
	if fl.spec == "" {
		return "openapi/reference.yaml"
	}
	return doc.Source
}

// loadSpec loads --spec, or the reference server's embedded spec when there is no --target.
func loadSpec(ctx context.Context, fl runFlags) (*specload.Document, error) {
	switch {
	case fl.spec != "":
		return specload.Load(ctx, fl.spec, fl.loadOpt)
	case len(fl.targets) > 0:
		return nil, errors.New("--target needs --spec: the OpenAPI document of the API at the target")
	}
	return specload.LoadBytes(ctx, "reference.yaml (embedded)", openapi.Reference, fl.loadOpt)
}

// engineOptions are the firing engine's options from the flags; the values of the headers
// named by secrets are redacted wherever an exchange is captured.
func engineOptions(fl runFlags, secrets []string) (engine.Options, error) {
	st, err := engine.ParseStrategy(fl.sync)
	if err != nil {
		return engine.Options{}, fmt.Errorf("--sync: %w", err)
	}
	if fl.timeout <= 0 {
		return engine.Options{}, fmt.Errorf("--timeout must be positive, got %v", fl.timeout)
	}
	opts := engine.Options{Strategy: st, Timeout: fl.timeout, Secrets: secrets}
	if opts.TLS, err = auth.TLSConfig(fl.cert, fl.key, fl.ca, fl.insecure); err != nil {
		return engine.Options{}, err
	}
	return opts, nil
}

// credentials are the headers every request carries: CONFLICTCHECK_HEADER_<NAME> variables
// of environ, then --header-file, then --header (a later one replaces a name), and
// --auth-command's, which is run once here when fetch is set so that a broken command is a
// preflight error.
func credentials(ctx context.Context, fl runFlags, environ []string, fetch bool) (*auth.Source, error) {
	fromEnv, err := auth.FromEnv(environ)
	if err != nil {
		return nil, err
	}
	var fromFile http.Header
	if fl.headerFile != "" {
		if fromFile, err = auth.FromFile(fl.headerFile); err != nil {
			return nil, err
		}
	}
	fromFlags, err := auth.FromFlags(fl.headers)
	if err != nil {
		return nil, err
	}
	src := &auth.Source{Static: auth.Merge(fromEnv, fromFile, fromFlags)}
	switch {
	case fl.authRefresh < 0:
		return nil, fmt.Errorf("--auth-refresh must be positive, got %v", fl.authRefresh)
	case fl.authRefresh > 0 && fl.authCommand == "":
		return nil, errors.New("--auth-refresh needs --auth-command")
	case fl.authCommand != "":
		src.Command = auth.NewCommand(fl.authCommand, fl.authRefresh)
		if !fetch {
			break
		}
		if _, err := src.Header(ctx); err != nil {
			return nil, err
		}
	}
	return src, nil
}

// selection is what --label-filter and --focus select, checked before anything runs: Ginkgo
// would exit the process on a bad expression.
type selection struct {
	labels types.LabelFilter
	focus  *regexp.Regexp
}

// selectors names the --label-filter and --focus given, for an error.
func (fl runFlags) selectors() string {
	var parts []string
	if fl.labelFilter != "" {
		parts = append(parts, fmt.Sprintf("--label-filter %q", fl.labelFilter))
	}
	for _, f := range fl.focus {
		parts = append(parts, fmt.Sprintf("--focus %q", f))
	}
	return strings.Join(parts, " with ")
}

// parseSelection parses --label-filter and --focus.
func parseSelection(fl runFlags) (selection, error) {
	var sel selection
	for _, f := range fl.focus {
		if _, err := regexp.Compile(f); err != nil {
			return sel, fmt.Errorf("--focus %q: %w", f, err)
		}
	}
	if len(fl.focus) > 0 {
		// Ginkgo joins the focus expressions with | the same way.
		sel.focus = regexp.MustCompile(strings.Join(fl.focus, "|"))
	}
	if fl.labelFilter != "" {
		filter, err := types.ParseLabelFilter(fl.labelFilter)
		if err != nil {
			return sel, fmt.Errorf("--label-filter %q: %s", fl.labelFilter, plainGinkgoError(err))
		}
		sel.labels = filter
	}
	return sel, nil
}

// ansi matches terminal colour codes, which Ginkgo's errors carry.
var ansi = regexp.MustCompile(`\x1b\[[0-9;]*m`)

// plainGinkgoError is a Ginkgo error's message on one line without colour codes.
func plainGinkgoError(err error) string {
	var ge types.GinkgoError
	msg := err.Error()
	if errors.As(err, &ge) {
		msg = ge.Message
	}
	return oneLine(ansi.ReplaceAllString(msg, ""))
}

// chosen are the names of p's scenarios with at least one check sel lets run, and how many
// checks it lets run.
func (sel selection) chosen(p *plan.Plan) (names []string, checks int) {
	for i, name := range suites.ScenarioNames(p) {
		n := 0
		for _, id := range suites.CheckIDs {
			if sel.labels != nil && !sel.labels([]string{string(p.Scenarios[i].Kind), id}) {
				continue
			}
			if sel.focus != nil && !sel.focus.MatchString(suites.SpecText(name, id)) {
				continue
			}
			n++
		}
		if n > 0 {
			names = append(names, name)
			checks += n
		}
	}
	return names, checks
}
