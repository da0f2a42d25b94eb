package specload

import (
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/conflictcheck/conflictcheck/internal/xconflict"
)

func TestOverlayAddsConflicts(t *testing.T) {
	plain := mustLoad(t, "testdata/overlay/plain.yaml", Options{})
	if len(plain.Conflicts) != 0 {
		t.Fatalf("the plain spec already has conflicts: %v", plain.Conflicts)
	}
	doc := mustLoad(t, "testdata/overlay/plain.yaml", Options{Overlays: []string{"testdata/overlay/kubernetes-style.yaml"}})
	want := []xconflict.Conflict{{Kind: xconflict.DuplicateCreate, Expect: []int{409}, Read: "getPet"}}
	if got := doc.Conflicts["createPet"]; !reflect.DeepEqual(got, want) {
		t.Errorf("createPet conflicts = %+v, want %+v", got, want)
	}
	// Document order survives, less the removed operation.
	if got, want := ids(doc.Operations), []string{"createPet", "getPet", "late"}; !slices.Equal(got, want) {
		t.Errorf("Operations = %v, want %v", got, want)
	}
	get := doc.T.Paths.Value("/pets/{id}").Get
	if get.Responses.Value("404") == nil || get.Responses.Value("200") == nil {
		t.Errorf("responses were not merged: %v", get.Responses.Map())
	}
	if !slices.Equal(get.Tags, []string{"pets", "extra"}) {
		t.Errorf("tags = %v, want the update appended", get.Tags)
	}
	if doc.T.Info.Title != "pets with conflicts" {
		t.Errorf("title = %q, want replaced", doc.T.Info.Title)
	}
}

// TestOverlayOnSwagger2 adds a conflict to a Swagger 2.0 document, as one would to the
// Kubernetes spec: the overlay applies before the conversion.
func TestOverlayOnSwagger2(t *testing.T) {
	overlay := writeFile(t, t.TempDir(), "overlay.yaml", `overlay: 1.0.0
info: {title: t, version: "1"}
actions:
  - target: $.paths['/pets/{id}'].delete
    update: {x-conflict: {kind: delete-in-use, dependent: createPet, expect: [409]}}
`)
	doc := mustLoad(t, "testdata/swagger2.yaml", Options{Overlays: []string{overlay}})
	if cs := doc.Conflicts["deletePet"]; len(cs) != 1 || cs[0].Kind != xconflict.DeleteInUse || cs[0].Dependent != "createPet" {
		t.Errorf("deletePet conflicts = %+v", cs)
	}
	if len(doc.Conflicts) != 2 || doc.Version != "2.0" {
		t.Errorf("conflicts %v, version %q", doc.Conflicts, doc.Version)
	}
}

func TestOverlayErrors(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name, overlay, want string
	}{
		{"target matches nothing", "", `overlay testdata/overlay/no-match.yaml: actions[1] (target "$.paths['/nope'].get"): matches nothing`},
		{"not an overlay", "openapi: 3.0.3\n", `not an Overlay document: no "overlay" version field`},
		{"no actions", "overlay: 1.0.0\ninfo: {title: t, version: '1'}\n", `"actions" must be a non-empty list`},
		{"bad JSONPath", "overlay: 1.0.0\nactions: [{target: '$.paths[', update: {}}]\n", `actions[0]: target "$.paths["`},
		{"no update or remove", "overlay: 1.0.0\nactions: [{target: '$.info'}]\n", `actions[0]: neither update nor remove: true`},
		{"unsupported field", "overlay: 1.0.0\nactions: [{target: '$.info', copy: '$.x'}]\n", `actions[0]: unsupported field "copy"`},
		{"version 2", "overlay: 2.0.0\nactions: [{target: '$.info', remove: true}]\n", `unsupported Overlay version "2.0.0"`},
		{"remove everything", "overlay: 1.0.0\nactions: [{target: '$', remove: true}]\n", `cannot remove the whole document`},
		{"missing file", "-", `overlay testdata/overlay/nope.yaml: no such file`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := "testdata/overlay/no-match.yaml"
			switch tc.overlay {
			case "":
			case "-":
				path = "testdata/overlay/nope.yaml"
			default:
				path = writeFile(t, dir, "overlay.yaml", tc.overlay)
			}
			msg := loadErr(t, "testdata/overlay/plain.yaml", Options{Overlays: []string{path}})
			if !strings.Contains(msg, tc.want) {
				t.Errorf("error\n%s\ndoes not say\n%s", msg, tc.want)
			}
		})
	}
}

func TestOverlayActions(t *testing.T) {
	const doc = `{"a": {"b": 1, "c": {"d": [1, 2]}, "s": "x"}, "list": [{"id": 1}, {"id": 2}, {"id": 3}], "tags": ["t"]}`
	for _, tc := range []struct {
		name   string
		target string
		update string // JSON; "" means remove
		want   string
	}{
		{"merge objects recursively", "$.a", `{"b": 2, "c": {"e": true, "d": [3]}, "n": null}`,
			`{"a": {"b": 2, "c": {"d": [1, 2, 3], "e": true}, "s": "x", "n": null}, "list": [{"id": 1}, {"id": 2}, {"id": 3}], "tags": ["t"]}`},
		{"append to a list", "$.tags", `"u"`,
			`{"a": {"b": 1, "c": {"d": [1, 2]}, "s": "x"}, "list": [{"id": 1}, {"id": 2}, {"id": 3}], "tags": ["t", "u"]}`},
		{"append a list's items", "$.tags", `["u", "v"]`,
			`{"a": {"b": 1, "c": {"d": [1, 2]}, "s": "x"}, "list": [{"id": 1}, {"id": 2}, {"id": 3}], "tags": ["t", "u", "v"]}`},
		{"replace a primitive", "$.a.s", `{"now": "an object"}`,
			`{"a": {"b": 1, "c": {"d": [1, 2]}, "s": {"now": "an object"}}, "list": [{"id": 1}, {"id": 2}, {"id": 3}], "tags": ["t"]}`},
		{"update every match", "$.list[*]", `{"seen": true}`,
			`{"a": {"b": 1, "c": {"d": [1, 2]}, "s": "x"}, "list": [{"id": 1, "seen": true}, {"id": 2, "seen": true}, {"id": 3, "seen": true}], "tags": ["t"]}`},
		{"remove a member", "$.a.c", "",
			`{"a": {"b": 1, "s": "x"}, "list": [{"id": 1}, {"id": 2}, {"id": 3}], "tags": ["t"]}`},
		{"remove list items by filter", "$.list[?@.id != 2]", "",
			`{"a": {"b": 1, "c": {"d": [1, 2]}, "s": "x"}, "list": [{"id": 2}], "tags": ["t"]}`},
		{"remove nested matches", "$..d", "",
			`{"a": {"b": 1, "c": {}, "s": "x"}, "list": [{"id": 1}, {"id": 2}, {"id": 3}], "tags": ["t"]}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o, err := parseOverlay("test", map[string]any{"overlay": "1.0.0", "actions": []any{action1(t, tc.target, tc.update)}})
			if err != nil {
				t.Fatal(err)
			}
			root, err := parseJSON([]byte(doc))
			if err != nil {
				t.Fatal(err)
			}
			out, err := applyOverlays(root, []*overlay{o})
			if err != nil {
				t.Fatal(err)
			}
			got, err := appendJSON(nil, out)
			if err != nil {
				t.Fatal(err)
			}
			var g, w any
			json.Unmarshal(got, &g)
			json.Unmarshal([]byte(tc.want), &w)
			if !reflect.DeepEqual(g, w) {
				t.Errorf("got  %s\nwant %s", got, tc.want)
			}
		})
	}
}

func action1(t *testing.T, target, update string) map[string]any {
	t.Helper()
	a := map[string]any{"target": target}
	if update == "" {
		a["remove"] = true
		return a
	}
	d := json.NewDecoder(strings.NewReader(update))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		t.Fatal(err)
	}
	a["update"] = v
	return a
}

// TestOverlayUpdateIsCopied applies one update to two targets, then changes one of them.
func TestOverlayUpdateIsCopied(t *testing.T) {
	o, err := parseOverlay("test", map[string]any{"overlay": "1.0.0", "actions": []any{
		map[string]any{"target": "$.x[*]", "update": map[string]any{"tags": []any{"a"}}},
		map[string]any{"target": "$.x[0].tags", "update": "b"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	root, _ := parseJSON([]byte(`{"x": [{}, {}]}`))
	out, err := applyOverlays(root, []*overlay{o})
	if err != nil {
		t.Fatal(err)
	}
	got, _ := appendJSON(nil, out)
	if want := `{"x":[{"tags":["a","b"]},{"tags":["a"]}]}`; string(got) != want {
		t.Errorf("got %s, want %s", got, want)
	}
}
