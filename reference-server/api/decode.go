package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/conflictcheck/conflictcheck/internal/runtimeexpr"
)

// readObject reads a JSON object body, enforcing the media type and the size limit. It returns
// the object's members, or the problem to send: 415, 413, 400 (malformed) or 422 (not an object).
func readObject(r *http.Request, limit int64) (*object, *problem) {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
		return nil, &problem{Name: "unsupported-media-type", Status: http.StatusUnsupportedMediaType,
			Detail: "send the body as application/json"}
	}
	data, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if err != nil {
		p := badRequest("the request body could not be read")
		return nil, &p
	}
	if int64(len(data)) > limit {
		return nil, &problem{Name: "content-too-large", Status: http.StatusRequestEntityTooLarge,
			Detail: fmt.Sprintf("the request body exceeds %d bytes", limit)}
	}
	if !utf8.Valid(data) {
		p := badRequest("the request body is not valid UTF-8")
		return nil, &p
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		p := badRequest("the request body is not valid JSON: " + jsonError(err))
		return nil, &p
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		p := badRequest("the request body holds more than one JSON value")
		return nil, &p
	}
	m, ok := v.(map[string]any)
	if !ok {
		p := validationFailed([]fieldError{{Field: "", Message: "must be a JSON object"}})
		return nil, &p
	}
	return &object{members: m, seen: map[string]bool{}}, nil
}

// jsonError shortens encoding/json's messages, which name Go types a client cannot know.
func jsonError(err error) string {
	var syn *json.SyntaxError
	if errors.As(err, &syn) {
		return fmt.Sprintf("%s at byte %d", syn.Error(), syn.Offset)
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return "unexpected end of input"
	}
	return err.Error()
}

// object validates the members of a decoded JSON object field by field, collecting every error
// so that one 422 names them all.
type object struct {
	members map[string]any
	seen    map[string]bool
	errs    []fieldError
}

func (o *object) fail(name, msg string) {
	o.errs = append(o.errs, fieldError{Field: "/" + name, Message: msg})
}

// get returns a member and marks it known; a missing required member is an error.
func (o *object) get(name string, required bool) (any, bool) {
	o.seen[name] = true
	v, ok := o.members[name]
	if !ok {
		if required {
			o.fail(name, "is required")
		}
		return nil, false
	}
	return v, true
}

// str reads a string member of length [min, max] matching pattern (when not nil).
func (o *object) str(name string, required bool, min, max int, pattern *regexp.Regexp) *string {
	v, ok := o.get(name, required)
	if !ok {
		return nil
	}
	s, isStr := v.(string)
	switch n := utf8.RuneCountInString(s); {
	case !isStr:
		o.fail(name, "must be a string")
	case n < min:
		o.fail(name, fmt.Sprintf("must be at least %d characters", min))
	case n > max:
		o.fail(name, fmt.Sprintf("must be at most %d characters", max))
	case pattern != nil && !pattern.MatchString(s):
		o.fail(name, "must match "+pattern.String())
	default:
		return &s
	}
	return nil
}

// integer reads an integral number member within [min, max].
func (o *object) integer(name string, required bool, min, max int64) *int64 {
	v, ok := o.get(name, required)
	if !ok {
		return nil
	}
	num, isNum := v.(json.Number)
	if !isNum {
		o.fail(name, "must be an integer")
		return nil
	}
	n, err := strconv.ParseInt(num.String(), 10, 64)
	if err != nil {
		f, ferr := num.Float64()
		if ferr != nil || f != float64(int64(f)) {
			o.fail(name, "must be an integer")
			return nil
		}
		n = int64(f) // 3.0 and 3e2 are integers too
	}
	if n < min || n > max {
		o.fail(name, fmt.Sprintf("must be between %d and %d", min, max))
		return nil
	}
	return &n
}

// done reports unknown members and returns the validation problem, if any.
func (o *object) done() *problem {
	var unknown []string
	for k := range o.members {
		if !o.seen[k] {
			unknown = append(unknown, k)
		}
	}
	sort.Strings(unknown)
	for _, k := range unknown {
		o.errs = append(o.errs, fieldError{Field: "/" + runtimeexpr.EscapeToken(k), Message: "is not a known field"})
	}
	if len(o.errs) == 0 {
		return nil
	}
	p := validationFailed(o.errs)
	return &p
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// arrive reads the body up to the size limit, stamps the arrival and hands it to the OnArrival
// hook; the handlers then read a body that replays what was read, so they answer exactly as
// without the hook (a too-large body still gets its 413, a read error its 400).
func (h *Handler) arrive(r *http.Request) {
	if r.Body == nil {
		h.arrival(r, time.Now())
		return
	}
	data, err := io.ReadAll(io.LimitReader(r.Body, h.maxBody+1))
	at := time.Now()
	var rest io.Reader = r.Body
	if err != nil {
		rest = failedRead{err}
	}
	r.Body = replayBody{Reader: io.MultiReader(bytes.NewReader(data), rest), Closer: r.Body}
	h.arrival(r, at)
}

// replayBody is a request body whose start was read ahead.
type replayBody struct {
	io.Reader
	io.Closer
}

// failedRead keeps failing with the error the read-ahead met.
type failedRead struct{ err error }

func (f failedRead) Read([]byte) (int, error) { return 0, f.err }
