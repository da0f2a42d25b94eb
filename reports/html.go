package reports

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"
	"html/template"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/conflictcheck/conflictcheck/suites"
)

// HTMLFile is the name of the HTML report in a report dir.
const HTMLFile = "report.html"

// htmlBodyLimit is how many bytes of a body the HTML report shows; report.json has them all.
const htmlBodyLimit = 4 << 10

//go:embed html.tmpl
var htmlSource string

// htmlTemplate is the report page; html/template escapes every value, since bodies and
// headers come from the target.
var htmlTemplate = template.Must(template.New(HTMLFile).Parse(htmlSource))

// WriteHTML writes run as a self-contained page (inline CSS and SVG, no script, no external
// asset) to dir/report.html, linking the linearizability visualizations found in dir.
func WriteHTML(dir string, run Run) error {
	var buf bytes.Buffer
	if err := htmlTemplate.Execute(&buf, pageOf(dir, run)); err != nil {
		return fmt.Errorf("render %s: %w", HTMLFile, err)
	}
	return writeReport(dir, HTMLFile, buf.Bytes())
}

// htmlPage is what the template shows of a run.
type htmlPage struct {
	Title        string
	Lede         string
	Failed       bool
	Spec         string
	Targets      []string
	Started      string
	Duration     string
	Summary      Summary
	Pass         int
	Fail         int
	Inconclusive int
	Scenarios    []htmlScenario
}

// htmlScenario is one scenario's section.
type htmlScenario struct {
	Anchor     string
	ID         string
	Name       string
	Kind       string
	Operation  string
	Method     string
	Path       string
	Verdict    string
	Strategy   string
	Attempts   int
	Overlapped bool
	Error      string
	Leftovers  []string
	// PushBack says how the target pushed back (429 waits, renewed credentials), if it did.
	PushBack string
	Checks   []htmlCheck
	// Bad lists the IDs of the checks that failed or were inconclusive, for the overview.
	Bad       []string
	Timeline  *htmlTimeline
	Exchanges []htmlExchange
}

// htmlCheck is one check's line; Evidence is shown in full for failed and inconclusive checks.
type htmlCheck struct {
	ID      string
	Status  string
	Message string
	// Reason is the message's first line without the check and scenario it repeats.
	Reason   string
	Evidence bool
	// Open is set on the first check with evidence, whose message is shown unfolded.
	Open bool
	// Long is set when the message has more lines than its reason: they fold under it.
	Long          bool
	Visualization string
}

// htmlTimeline is the SVG geometry of a scenario's race.
type htmlTimeline struct {
	Width, Height int
	PlotLeft      string
	PlotRight     string
	AxisY         string
	GridTop       string
	Ticks         []htmlTick
	Rows          []htmlRow
	Span          string
	LabelX        string
	StatusX       string
	BarH          string
	TickY         string
	TickLabelY    string
}

// htmlTick is one axis tick.
type htmlTick struct {
	X     string
	Label string
}

// htmlRow is one racer's bar: held from write start to release, then waiting and reading.
type htmlRow struct {
	Racer      int
	Y          string
	TextY      string
	MarkY1     string
	MarkY2     string
	Label      string
	Status     string
	Class      string
	X, W       string
	HeldW      string
	Release    string
	HasRelease bool
	FirstByte  string
	HasFirst   bool
	Diamond    string
	Tooltip    string
}

// htmlExchange is one exchange, collapsed by default.
type htmlExchange struct {
	Phase         string
	Racer         string
	Method        string
	URL           string
	Target        string
	Proto         string
	Status        string
	Class         string
	Error         string
	Took          string
	Times         string
	RequestHeader string
	RequestBody   htmlBody
	Header        string
	Body          htmlBody
}

// htmlBody is a body as shown: pretty-printed JSON when it parses, cut at htmlBodyLimit.
type htmlBody struct {
	Text string
	Note string
}

func pageOf(dir string, run Run) htmlPage {
	p := htmlPage{
		Title:    run.Meta.Title,
		Failed:   run.Failed(),
		Spec:     run.Meta.Spec,
		Targets:  run.Meta.Targets,
		Duration: duration(run.Meta.Duration),
		Summary:  run.Summary,
	}
	if !run.Meta.Started.IsZero() {
		p.Started = run.Meta.Started.Format("2006-01-02 15:04:05 MST")
	}
	p.Pass, p.Fail, p.Inconclusive = run.Verdicts()
	for i, s := range run.Scenarios {
		p.Scenarios = append(p.Scenarios, scenarioOf(dir, i, s))
	}
	p.Lede = lede(len(run.Scenarios), p.Fail, p.Inconclusive)
	// Failures and inconclusive scenarios first, each group in plan order.
	sort.SliceStable(p.Scenarios, func(i, j int) bool {
		return p.Scenarios[i].Verdict != string(suites.VerdictPass) && p.Scenarios[j].Verdict == string(suites.VerdictPass)
	})
	return p
}

// lede says in a phrase how the scenarios fared.
func lede(total, fail, inconclusive int) string {
	plural := func(n int, one, many string) string {
		if n == 1 {
			return one
		}
		return many
	}
	switch {
	case total == 0:
		return "no scenario ran"
	case fail == 0 && inconclusive == 0:
		return fmt.Sprintf("%s %d %s", plural(total, "the", "all"), total, plural(total, "scenario passes", "scenarios pass"))
	case inconclusive == 0:
		return fmt.Sprintf("%d of %d %s failed", fail, total, plural(total, "scenario", "scenarios"))
	case fail == 0:
		return fmt.Sprintf("%d of %d %s inconclusive", inconclusive, total, plural(total, "scenario", "scenarios"))
	default:
		return fmt.Sprintf("%d of %d scenarios failed, %d inconclusive", fail, total, inconclusive)
	}
}

func scenarioOf(dir string, i int, s Scenario) htmlScenario {
	h := htmlScenario{
		Anchor: "scenario-" + strconv.Itoa(i+1), ID: s.ID, Kind: s.Kind, Operation: s.Operation,
		Method: s.Method, Path: s.Path, Verdict: string(s.Verdict), Strategy: s.Strategy, Name: s.Title(),
		Attempts: s.Attempts, Overlapped: s.Overlapped, Error: s.Error, Leftovers: s.Leftovers,
		PushBack: s.PushBack(),
	}
	if h.Verdict == "" {
		h.Verdict = string(suites.VerdictInconclusive)
	}
	for _, c := range s.Checks {
		hc := htmlCheck{ID: c.ID, Status: string(c.Status), Message: c.Message, Reason: reason(c, s.ID),
			Long: strings.Contains(strings.TrimSpace(c.Message), "\n")}
		hc.Evidence = c.Status == suites.Failed || c.Status == suites.Inconclusive
		if hc.Evidence {
			hc.Open = len(h.Bad) == 0
			h.Bad = append(h.Bad, c.ID)
		}
		if c.ID == suites.CheckLinearizable && c.Status == suites.Failed {
			name := suites.VisualizationFile(s.ID)
			if st, err := os.Stat(filepath.Join(dir, name)); err == nil && st.Mode().IsRegular() {
				hc.Visualization = name
			}
		}
		h.Checks = append(h.Checks, hc)
	}
	var race []Exchange
	for _, x := range s.Exchanges {
		if x.Phase == "race" {
			race = append(race, x)
		}
		h.Exchanges = append(h.Exchanges, exchangeView(x))
	}
	if len(race) > 0 {
		h.Timeline = timelineOf(race)
	}
	return h
}

// reason is the first line of c's message, without the "<check> failed for <scenario>: " or
// "<check>: <scenario>: " it starts with.
func reason(c suites.CheckOutcome, scenario string) string {
	line, _, _ := strings.Cut(c.Message, "\n")
	for _, prefix := range []string{c.ID + " failed for " + scenario + ": ", c.ID + ": " + scenario + ": "} {
		if r, ok := strings.CutPrefix(line, prefix); ok {
			return r
		}
	}
	return line
}

// statusClass names the colour of a status: ok (2xx), conflict (an expected rejection: 409,
// 412, 422), other (any other status), server (5xx), error (no status: a transport error).
func statusClass(status int) string {
	switch {
	case status == 0:
		return "error"
	case status >= 200 && status < 300:
		return "ok"
	case status == http.StatusConflict || status == http.StatusPreconditionFailed || status == http.StatusUnprocessableEntity:
		return "conflict"
	case status >= 500:
		return "server"
	default:
		return "other"
	}
}

// Timeline geometry, in SVG user units.
const (
	tlWidth     = 1020
	tlPlotLeft  = 130
	tlPlotRight = 950
	tlTop       = 10
	tlRow       = 26
	tlBar       = 14
	tlAxis      = 30
)

func timelineOf(race []Exchange) *htmlTimeline {
	race = slices.Clone(race)
	sort.SliceStable(race, func(i, j int) bool { return race[i].Racer < race[j].Racer })
	var end Micros
	for _, x := range race {
		end = max(end, x.WriteStart, x.Release, x.FirstByte, x.Done)
	}
	step, span := axis(float64(end))
	scale := float64(tlPlotRight-tlPlotLeft) / span
	xOf := func(m Micros) float64 { return tlPlotLeft + float64(max(m, 0))*scale }
	height := tlTop + len(race)*tlRow + tlAxis
	t := &htmlTimeline{
		Width: tlWidth, Height: height,
		PlotLeft: num(tlPlotLeft), PlotRight: num(tlPlotRight),
		GridTop: num(tlTop - 4), AxisY: num(float64(tlTop + len(race)*tlRow)),
		Span:   fmt.Sprintf("0 – %s µs", thousands(int64(span))),
		LabelX: num(tlPlotLeft - 12), StatusX: num(tlPlotRight + 12), BarH: num(tlBar),
		TickY: num(float64(tlTop + len(race)*tlRow + 5)), TickLabelY: num(float64(tlTop + len(race)*tlRow + 18)),
	}
	for v := 0.0; v <= span+step/2; v += step {
		t.Ticks = append(t.Ticks, htmlTick{X: num(tlPlotLeft + v*scale), Label: thousands(int64(v))})
	}
	for i, x := range race {
		y := float64(tlTop + i*tlRow + (tlRow-tlBar)/2)
		x0 := xOf(x.WriteStart)
		x1 := max(xOf(x.Done), x0+2) // a bar is at least 2 units wide, even for an instant failure
		r := htmlRow{
			Racer: x.Racer, Y: num(y), TextY: num(y + tlBar/2 + 4), MarkY1: num(y - 3), MarkY2: num(y + tlBar + 3),
			Label: fmt.Sprintf("racer %d · %s", x.Racer, x.Method), Status: statusText(x),
			Class: statusClass(x.Status), X: num(x0), W: num(x1 - x0),
		}
		if x.Release > x.WriteStart {
			r.HeldW = num(min(xOf(x.Release), x1) - x0)
		}
		if x.Release > 0 {
			r.HasRelease, r.Release = true, num(xOf(x.Release))
		}
		if x.FirstByte > 0 {
			fx, cy := xOf(x.FirstByte), y+tlBar/2
			r.HasFirst, r.FirstByte = true, num(fx)
			r.Diamond = fmt.Sprintf("%s,%s %s,%s %s,%s %s,%s", num(fx), num(cy-6), num(fx+5), num(cy), num(fx), num(cy+6), num(fx-5), num(cy))
		}
		r.Tooltip = fmt.Sprintf("racer %d %s %s → %s\n%s", x.Racer, x.Method, x.URL, r.Status, times(x))
		t.Rows = append(t.Rows, r)
	}
	return t
}

// axis is a round tick step and the axis end (a multiple of it) for times up to end µs.
func axis(end float64) (step, span float64) {
	if end <= 0 {
		return 1, 1
	}
	raw := end / 6
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	step = 10 * mag
	for _, m := range []float64{1, 2, 5} {
		if m*mag >= raw {
			step = m * mag
			break
		}
	}
	step = max(step, 1)
	return step, math.Ceil(end/step) * step
}

func num(f float64) string { return strconv.FormatFloat(f, 'f', 1, 64) }

// thousands is n with thin spaces between groups of three digits.
func thousands(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteRune('\u202f')
		}
		b.WriteRune(r)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

func statusText(x Exchange) string {
	if x.Status == 0 {
		return "error"
	}
	return strconv.Itoa(x.Status)
}

func times(x Exchange) string {
	return fmt.Sprintf("write start %s µs · release %s µs · first byte %s µs · done %s µs",
		thousands(int64(x.WriteStart)), thousands(int64(x.Release)), thousands(int64(x.FirstByte)), thousands(int64(x.Done)))
}

// duration is a run's length as a person reads it.
func duration(m Micros) string {
	d := time.Duration(m) * time.Microsecond
	switch {
	case d < time.Millisecond:
		return fmt.Sprintf("%d µs", m)
	case d < time.Second:
		return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond))
	case d < time.Minute:
		return fmt.Sprintf("%.2f s", d.Seconds())
	default:
		return d.Round(time.Second).String()
	}
}

func exchangeView(x Exchange) htmlExchange {
	h := htmlExchange{
		Phase: x.Phase, Method: x.Method, URL: x.URL, Target: x.Target, Proto: x.Proto,
		Status: statusText(x), Class: statusClass(x.Status), Error: x.Error,
		Took:          thousands(int64(x.Done-x.WriteStart)) + " µs",
		Times:         times(x),
		RequestHeader: headerText(x.RequestHeader),
		RequestBody:   bodyView(x.RequestBody, x.RequestBodyEncoding, false),
		Header:        headerText(x.Header),
		Body:          bodyView(x.Body, x.BodyEncoding, x.Truncated),
	}
	if x.Phase == "race" {
		h.Racer = "racer " + strconv.Itoa(x.Racer)
	}
	return h
}

// headerText is h as header lines, sorted by name.
func headerText(h http.Header) string {
	keys := make([]string, 0, len(h))
	for k := range h {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		for _, v := range h[k] {
			fmt.Fprintf(&b, "%s: %s\n", k, v)
		}
	}
	return strings.TrimSuffix(b.String(), "\n")
}

// bodyView is a body as the page shows it: JSON indented, at most htmlBodyLimit bytes, with
// a note saying what was changed.
func bodyView(body, encoding string, truncated bool) htmlBody {
	var notes []string
	text := body
	if encoding != "" {
		notes = append(notes, "not UTF-8, shown as "+encoding)
	} else if json.Valid([]byte(body)) {
		var b bytes.Buffer
		if err := json.Indent(&b, []byte(body), "", "  "); err == nil {
			text = b.String()
		}
	}
	if len(text) > htmlBodyLimit {
		cut := htmlBodyLimit
		for cut > 0 && !utf8.RuneStart(text[cut]) {
			cut--
		}
		text = text[:cut]
		notes = append(notes, fmt.Sprintf("showing the first %d KiB of %d bytes; report.json has the whole body", htmlBodyLimit>>10, len(body)))
	}
	if truncated {
		notes = append(notes, "the capture itself was cut short")
	}
	return htmlBody{Text: text, Note: strings.Join(notes, "; ")}
}
