package fakeapi

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Colors are the colors a widget may have.
var Colors = []string{"red", "green", "blue", "yellow", "black", "white"}

// maxName bounds a widget's name.
const maxName = 64

// widget is one stored widget.
type widget struct {
	seq     int // creation order, for listing
	id      string
	name    string
	color   string
	version int // per widget, from 1
	rv      int // the shared resource-version counter at its last write
}

// kubernetes reports whether widgets are shaped like Kubernetes objects.
func (a *API) kubernetes() bool { return a.opts.VersionField == VersionResourceVersion }

// field is the top-level member holding the version, "" for the ETag and Kubernetes shapes.
func (a *API) field() string {
	if a.opts.VersionField == VersionETag || a.kubernetes() {
		return ""
	}
	return strings.TrimPrefix(a.opts.VersionField, "/")
}

// bodyVersion reports whether the version travels in the body.
func (a *API) bodyVersion() bool { return a.opts.VersionField != VersionETag }

// etag is w's entity tag: "n", or W/"n" with WeakETag.
func (a *API) etag(w *widget) string {
	t := strconv.Quote(strconv.Itoa(w.version))
	if a.opts.WeakETag {
		return "W/" + t
	}
	return t
}

// versionValue is w's version as the body carries it.
func (a *API) versionValue(w *widget) any {
	switch a.opts.VersionField {
	case VersionRev:
		sum := sha256.Sum256([]byte(fmt.Sprintf("%s\x00%s\x00%s\x00%d", w.id, w.name, w.color, w.version)))
		return fmt.Sprintf("%d-%s", w.version, hex.EncodeToString(sum[:])[:16])
	case VersionResourceVersion:
		return strconv.Itoa(w.rv)
	case VersionLockVersion:
		return w.version - 1
	case VersionRevision:
		return w.version
	}
	return nil
}

// render is w's JSON representation.
func (a *API) render(w *widget) map[string]any {
	if a.kubernetes() {
		return map[string]any{
			"id":       w.id,
			"metadata": map[string]any{"name": w.name, "resourceVersion": a.versionValue(w)},
			"spec":     map[string]any{"color": w.color},
		}
	}
	m := map[string]any{"id": w.id, "name": w.name, "color": w.color}
	if f := a.field(); f != "" {
		m[f] = a.versionValue(w)
	}
	return m
}

// input is what a request body says.
type input struct {
	name, color       string
	hasName, hasColor bool // the member is present
	badName, badColor bool // present but not a valid value
	version           any
	hasVersion        bool
}

// parse reads a widget body in the API's shape; the string is why it is malformed.
func (a *API) parse(body []byte) (input, string) {
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil || m == nil {
		return input{}, "the body is not a JSON object"
	}
	var in input
	nameOf, colorOf, versionOf := m, m, m
	versionKey := a.field()
	if a.kubernetes() {
		meta, _ := m["metadata"].(map[string]any)
		spec, _ := m["spec"].(map[string]any)
		nameOf, colorOf, versionOf, versionKey = meta, spec, meta, "resourceVersion"
	}
	if v, ok := nameOf["name"]; ok {
		s, isStr := v.(string)
		in.name, in.hasName, in.badName = s, true, !isStr || s == "" || len(s) > maxName
	}
	if v, ok := colorOf["color"]; ok {
		s, isStr := v.(string)
		in.color, in.hasColor, in.badColor = s, true, !isStr || !slices.Contains(Colors, s)
	}
	if versionKey != "" {
		if v, ok := versionOf[versionKey]; ok && v != nil {
			in.version, in.hasVersion = v, true
		}
	}
	return in, ""
}

// invalid is why in cannot create (or, with needName false, update) a widget, or "".
func (a *API) invalid(in input, needName bool) string {
	nameAt, colorAt := "name", "color"
	if a.kubernetes() {
		nameAt, colorAt = "metadata.name", "spec.color"
	}
	switch {
	case needName && !in.hasName:
		return nameAt + " is required"
	case in.badName:
		return fmt.Sprintf("%s must be a string of 1 to %d characters", nameAt, maxName)
	case !in.hasColor:
		return colorAt + " is required"
	case in.badColor:
		return colorAt + " must be one of " + strings.Join(Colors, ", ")
	}
	return ""
}

// byName is the stored widget named name; a.mu is held.
func (a *API) byName(name string) *widget {
	for _, w := range a.widgets {
		if w.name == name {
			return w
		}
	}
	return nil
}

// store adds a new widget; a.mu is held.
func (a *API) store(id, name, color string) *widget {
	a.seq++
	a.rv++
	if id == "" {
		id = "w" + strconv.Itoa(a.seq)
	}
	w := &widget{seq: a.seq, id: id, name: name, color: color, version: 1, rv: a.rv}
	a.widgets[id] = w
	return w
}

// raceGap is the DuplicateRace fault's gap between check and write: a.mu is released during it.
func (a *API) raceGap() {
	if a.opts.Fault != DuplicateRace {
		return
	}
	a.mu.Unlock()
	d := a.opts.RaceWindow
	if d <= 0 {
		d = DefaultRaceWindow
	}
	time.Sleep(d)
	a.mu.Lock()
}

// snapshot is what a response tells about w, taken while a.mu is held.
type snapshot struct {
	id   string
	etag string
	body map[string]any
}

func (a *API) snap(w *widget) snapshot {
	return snapshot{id: w.id, etag: a.etag(w), body: a.render(w)}
}

// answer writes a widget response.
func (a *API) answer(w http.ResponseWriter, status int, s snapshot, location, body bool) {
	if !a.bodyVersion() {
		w.Header().Set("ETag", s.etag)
	}
	if location {
		w.Header().Set("Location", "/widgets/"+s.id)
	}
	if !body {
		w.WriteHeader(status)
		return
	}
	writeJSON(w, status, "application/json", s.body)
}

// decode parses and validates a widget body for a create (needName) or an update, answering
// 400 or 422 itself when it is not one; ok reports that it is.
func (a *API) decode(w http.ResponseWriter, body []byte, needName bool) (in input, ok bool) {
	in, bad := a.parse(body)
	if bad != "" {
		a.reject(w, http.StatusBadRequest, "malformed-request", bad)
		return input{}, false
	}
	if why := a.invalid(in, needName); why != "" {
		a.reject(w, http.StatusUnprocessableEntity, "validation-failed", why)
		return input{}, false
	}
	return in, true
}

// create is POST /widgets.
func (a *API) create(w http.ResponseWriter, body []byte) {
	in, ok := a.decode(w, body, true)
	if !ok {
		return
	}
	a.mu.Lock()
	if old := a.byName(in.name); old != nil {
		id := old.id
		a.mu.Unlock()
		if a.opts.DuplicateSeeOther {
			w.Header().Set("Location", "/widgets/"+id)
			w.WriteHeader(http.StatusSeeOther)
			return
		}
		a.reject(w, http.StatusConflict, "name-taken", fmt.Sprintf("the name %q already names widget %s", in.name, id))
		return
	}
	a.raceGap()
	s := a.snap(a.store("", in.name, in.color))
	a.mu.Unlock()
	status := a.opts.CreateStatus
	if status == 0 {
		status = http.StatusCreated
	}
	a.answer(w, status, s, true, !a.opts.IDInLocationOnly)
}

// list is GET /widgets, filtered by the name query parameter when given.
func (a *API) list(w http.ResponseWriter, r *http.Request) {
	name, filter := r.URL.Query()["name"]
	a.mu.Lock()
	var ws []*widget
	for _, x := range a.widgets {
		if !filter || slices.Contains(name, x.name) {
			ws = append(ws, x)
		}
	}
	slices.SortFunc(ws, func(x, y *widget) int { return x.seq - y.seq })
	items := make([]any, len(ws))
	for i, x := range ws {
		items[i] = a.render(x)
	}
	a.mu.Unlock()
	writeJSON(w, http.StatusOK, "application/json", map[string]any{"items": items})
}

// get is GET /widgets/{id}.
func (a *API) get(w http.ResponseWriter, id string) {
	a.mu.Lock()
	x := a.widgets[id]
	var s snapshot
	if x != nil {
		s = a.snap(x)
	}
	a.mu.Unlock()
	if x == nil {
		a.reject(w, http.StatusNotFound, "not-found", "no widget "+id)
		return
	}
	a.answer(w, http.StatusOK, s, false, true)
}

// delete is DELETE /widgets/{id}.
func (a *API) delete(w http.ResponseWriter, id string) {
	a.mu.Lock()
	_, ok := a.widgets[id]
	delete(a.widgets, id)
	a.mu.Unlock()
	if !ok {
		a.reject(w, http.StatusNotFound, "not-found", "no widget "+id)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// rejection is a 4xx a handler decided on while holding a.mu.
type rejection struct {
	status       int
	name, detail string
}

// put is PUT /widgets/{id}: an update conditional on the version, or, with PUTCreate, a create.
func (a *API) put(w http.ResponseWriter, r *http.Request, id string, body []byte) {
	in, ok := a.decode(w, body, false)
	if !ok {
		return
	}
	ifMatch, ifNoneMatch := r.Header.Get("If-Match"), r.Header.Get("If-None-Match")
	a.mu.Lock()
	status, s, rj := a.putLocked(id, in, ifMatch, ifNoneMatch)
	a.mu.Unlock()
	if rj != nil {
		a.reject(w, rj.status, rj.name, rj.detail)
		return
	}
	a.answer(w, status, s, status == http.StatusCreated, true)
}

// putLocked decides and applies a PUT; a.mu is held (the DuplicateRace gap releases it).
func (a *API) putLocked(id string, in input, ifMatch, ifNoneMatch string) (int, snapshot, *rejection) {
	cur := a.widgets[id]
	if cur == nil {
		switch {
		case !a.opts.PUTCreate:
			return 0, snapshot{}, &rejection{http.StatusNotFound, "not-found", "no widget " + id}
		case ifMatch != "":
			return 0, snapshot{}, &rejection{http.StatusPreconditionFailed, "precondition-failed", "If-Match: no widget " + id + " exists"}
		case a.bodyVersion() && in.hasVersion:
			return 0, snapshot{}, &rejection{http.StatusConflict, "version-mismatch", "a version was given but widget " + id + " does not exist"}
		case !validID(id):
			return 0, snapshot{}, &rejection{http.StatusUnprocessableEntity, "validation-failed", "an id is 1 to 64 letters, digits, '-' or '_'"}
		}
		if why := a.invalid(in, true); why != "" {
			return 0, snapshot{}, &rejection{http.StatusUnprocessableEntity, "validation-failed", why}
		}
		a.raceGap()
		return http.StatusCreated, a.snap(a.store(id, in.name, in.color)), nil
	}
	if a.opts.PUTCreate && ifNoneMatch != "" && noneMatchFails(ifNoneMatch, a.etag(cur)) {
		return 0, snapshot{}, &rejection{http.StatusPreconditionFailed, "precondition-failed", "If-None-Match: widget " + id + " exists"}
	}
	if a.opts.Fault != LostUpdate {
		if rj := a.stale(cur, in, ifMatch); rj != nil {
			if a.opts.AlreadyApplied && a.applied(cur, in) {
				return http.StatusOK, a.snap(cur), nil
			}
			return 0, snapshot{}, rj
		}
	}
	cur.color = in.color
	if a.opts.PUTCreate && in.hasName {
		cur.name = in.name
	}
	cur.version++
	a.rv++
	cur.rv = a.rv
	return http.StatusOK, a.snap(cur), nil
}

// stale is why an update of cur with in and ifMatch must be refused, or nil.
func (a *API) stale(cur *widget, in input, ifMatch string) *rejection {
	if !a.bodyVersion() {
		switch {
		case ifMatch == "":
			return &rejection{http.StatusPreconditionRequired, "precondition-required", "send If-Match with the widget's current ETag"}
		case !matchStrong(ifMatch, a.etag(cur)):
			return &rejection{http.StatusPreconditionFailed, "precondition-failed", "If-Match " + ifMatch + " does not match the current ETag " + a.etag(cur) + " (strong comparison)"}
		}
		return nil
	}
	where := strings.TrimPrefix(a.opts.VersionField, "/")
	switch {
	case !in.hasVersion:
		return &rejection{http.StatusConflict, "version-required", "the body must carry " + where}
	case compact(in.version) != compact(a.versionValue(cur)):
		return &rejection{http.StatusConflict, "version-mismatch", fmt.Sprintf("%s %s is stale: the current one is %s", where, compact(in.version), compact(a.versionValue(cur)))}
	}
	return nil
}

// applied reports whether in asks for the state cur already has.
func (a *API) applied(cur *widget, in input) bool {
	return in.color == cur.color && (!in.hasName || in.name == cur.name)
}

// matchStrong evaluates If-Match against the current tag with strong comparison (RFC 9110
// §13.1.1, §8.8.3.2): "*" matches; a weak tag, on either side, never does.
func matchStrong(ifMatch, current string) bool {
	if strings.TrimSpace(ifMatch) == "*" {
		return true
	}
	if strings.HasPrefix(current, "W/") {
		return false
	}
	for _, t := range strings.Split(ifMatch, ",") {
		if t = strings.TrimSpace(t); !strings.HasPrefix(t, "W/") && t == current {
			return true
		}
	}
	return false
}

// noneMatchFails evaluates If-None-Match (weak comparison, RFC 9110 §13.1.2): it fails when "*"
// or one of its tags matches the current tag.
func noneMatchFails(ifNoneMatch, current string) bool {
	if strings.TrimSpace(ifNoneMatch) == "*" {
		return true
	}
	cur := strings.TrimPrefix(current, "W/")
	for _, t := range strings.Split(ifNoneMatch, ",") {
		if strings.TrimPrefix(strings.TrimSpace(t), "W/") == cur {
			return true
		}
	}
	return false
}

// validID reports whether a client-chosen id is acceptable.
func validID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for _, r := range id {
		if !(r == '-' || r == '_' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			return false
		}
	}
	return true
}

func compact(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

// writeJSON answers status with v encoded as JSON of media type ct.
func writeJSON(w http.ResponseWriter, status int, ct string, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		b = []byte(`{}`)
	}
	w.Header().Set("Content-Type", ct)
	w.Header().Set("Content-Length", strconv.Itoa(len(b)+1))
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}
