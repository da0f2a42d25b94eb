package reports

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/conflictcheck/conflictcheck/suites"
)

// chromium is the path of the Chromium the browser test drives; it skips the test when there
// is none, unless CI=true, where a missing browser fails it.
func chromium(t *testing.T) string {
	t.Helper()
	if _, err := os.Stat("/usr/bin/chromium"); err == nil {
		return "/usr/bin/chromium"
	}
	if p, err := exec.LookPath("chromium"); err == nil {
		return p
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("chromium is not installed (/usr/bin/chromium or chromium on PATH): CI must run the browser test (.ci/run installs Debian's chromium)")
	}
	t.Skip("chromium is not installed (/usr/bin/chromium or chromium on PATH): skipping the browser test of report.html")
	return ""
}

// browserRun is a real run against the reference server's race fault (testdata), with the
// hand-built scenarios of the HTML tests appended: inconclusive, stopped before its race,
// a 500 with a hostile body, a transport error.
func browserRun(t *testing.T) Run {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "html-run.json"))
	if err != nil {
		t.Fatal(err)
	}
	var real Run
	if err := json.Unmarshal(b, &real); err != nil {
		t.Fatalf("decode testdata/html-run.json: %v", err)
	}
	extra := htmlScenarios()
	for i := range extra {
		extra[i].ID = "handmade/" + extra[i].ID
		extra[i].Name = "handmade " + extra[i].Name
	}
	run := htmlRun(append(real.Scenarios, extra...))
	run.Meta = real.Meta
	return run
}

// timelineBox is what the browser rendered of one timeline.
type timelineBox struct {
	Scenario string    `json:"scenario"`
	Height   float64   `json:"height"`
	Bars     []float64 `json:"bars"`
}

const timelinesJS = `Array.from(document.querySelectorAll('svg.timeline')).map(svg => ({
  scenario: svg.closest('section.scenario').dataset.scenario,
  height: svg.getBoundingClientRect().height,
  bars: Array.from(svg.querySelectorAll('rect.bar')).map(r => Math.min(r.getBBox().width, r.getBoundingClientRect().width)),
}))`

// openDetailsJS opens the first scenario's evidence, its exchanges and the first two of
// them, and says how tall the first response body renders.
const openDetailsJS = `(() => {
  const s = document.querySelector('section.scenario');
  s.querySelectorAll('details.evidence, details.exchanges').forEach(d => d.open = true);
  s.querySelectorAll('details.x').forEach((d, i) => d.open = i < 2);
  const body = s.querySelector('details.x pre.body');
  return body ? body.getBoundingClientRect().height : 0;
})()`

func TestHTMLInBrowser(t *testing.T) {
	execPath := chromium(t)
	run := browserRun(t)
	dir := t.TempDir()
	wantBars := map[string]int{}
	for _, s := range run.Scenarios {
		if n := racers(s); n > 0 {
			wantBars[s.ID] = n
		}
		for _, c := range s.Checks {
			if c.ID == suites.CheckLinearizable && c.Status == suites.Failed {
				view := "<!DOCTYPE html><title>linearizability</title><p>history of " + s.ID
				if err := os.WriteFile(filepath.Join(dir, suites.VisualizationFile(s.ID)), []byte(view), 0o644); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	if err := WriteHTML(dir, run); err != nil {
		t.Fatalf("WriteHTML: %v", err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	actx, cancelAlloc := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(execPath),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	)
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(actx)
	defer cancelBrowser()

	var mu sync.Mutex
	var problems []string
	problem := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		problems = append(problems, fmt.Sprintf(format, args...))
	}
	err := chromedp.Listen(bctx, func(ev any) {
		switch e := ev.(type) {
		case *runtime.EventConsoleAPICalled:
			if e.Type == runtime.ConsoleAPICalledTypeError || e.Type == runtime.ConsoleAPICalledTypeAssert {
				var args []string
				for _, a := range e.Args {
					args = append(args, string(a.Value))
				}
				problem("console.%s: %s", e.Type, strings.Join(args, " "))
			}
		case *runtime.EventExceptionThrown:
			d := e.ExceptionDetails
			if d.Exception != nil && d.Exception.Description != "" {
				problem("exception: %s %s", d.Text, d.Exception.Description)
			} else {
				problem("exception: %s", d.Text)
			}
		case *cdplog.EventEntryAdded:
			if e.Entry.Level == cdplog.EntryLevelError {
				problem("log (%s): %s %s", e.Entry.Source, e.Entry.Text, e.Entry.URL)
			}
		case *page.EventJavascriptDialogOpening:
			problem("a script ran: dialog %q", e.Message)
		}
	})
	if err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	url := "file://" + filepath.ToSlash(filepath.Join(dir, HTMLFile))
	if err := chromedp.Do(bctx, chromedp.Navigate(url)); err != nil {
		t.Fatalf("open %s: %v", url, err)
	}

	title, err := chromedp.Run(bctx, chromedp.Title())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(title, "FAIL") {
		t.Errorf("page title %q, want it to start with the run's verdict FAIL", title)
	}
	boxes, err := chromedp.Run(bctx, chromedp.Evaluate[[]timelineBox](timelinesJS))
	if err != nil {
		t.Fatalf("query the timelines: %v", err)
	}
	if len(boxes) != len(wantBars) {
		t.Errorf("%d timelines rendered, want %d (one per scenario with a race)", len(boxes), len(wantBars))
	}
	for _, b := range boxes {
		want, ok := wantBars[b.Scenario]
		if !ok {
			t.Errorf("a timeline for %q, which has no race", b.Scenario)
			continue
		}
		delete(wantBars, b.Scenario)
		if b.Height <= 0 {
			t.Errorf("%s: the timeline renders %v px tall", b.Scenario, b.Height)
		}
		if len(b.Bars) != want {
			t.Errorf("%s: %d bars rendered, want one per racer (%d)", b.Scenario, len(b.Bars), want)
		}
		for i, w := range b.Bars {
			if w <= 0 {
				t.Errorf("%s: bar %d renders %v wide", b.Scenario, i, w)
			}
		}
	}
	for id := range wantBars {
		t.Errorf("%s: no timeline rendered", id)
	}
	overflow, err := chromedp.Run(bctx, chromedp.Evaluate[bool](`document.documentElement.scrollWidth > window.innerWidth`))
	if err != nil {
		t.Fatal(err)
	}
	if overflow {
		t.Error("the page is wider than a 1280 px window")
	}

	shot, err := chromedp.Run(bctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	bodyHeight, err := chromedp.Run(bctx, chromedp.Evaluate[float64](openDetailsJS))
	if err != nil {
		t.Fatalf("open the exchanges: %v", err)
	}
	if bodyHeight <= 0 {
		t.Error("an opened exchange shows no response body")
	}
	expanded, err := chromedp.Run(bctx, chromedp.Screenshot(chromedp.CSS("section.scenario")))
	if err != nil {
		t.Fatalf("screenshot of a scenario: %v", err)
	}
	dirs := []string{t.TempDir()}
	if d := os.Getenv("CONFLICTCHECK_SCREENSHOT_DIR"); d != "" {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		dirs = append(dirs, d)
	}
	for _, d := range dirs {
		for name, png := range map[string][]byte{"report.png": shot, "report-scenario-open.png": expanded} {
			if err := os.WriteFile(filepath.Join(d, name), png, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		t.Logf("screenshots in %s", d)
	}

	mu.Lock()
	defer mu.Unlock()
	for _, p := range problems {
		t.Errorf("browser: %s", p)
	}
}
