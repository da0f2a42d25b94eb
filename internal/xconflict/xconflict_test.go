package xconflict

import (
	"bytes"
	"encoding/json"
	"errors"
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/conflictcheck/conflictcheck/openapi"
)

func decode(t *testing.T, s string) any {
	t.Helper()
	var v any
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatalf("bad JSON in test table: %v\n%s", err, s)
	}
	return v
}

func ptr(f float64) *float64 { return &f }

func TestParseAccepts(t *testing.T) {
	for _, tc := range []struct {
		name, value string
		want        []Conflict
	}{
		{"one object", `{"kind": "duplicate-create", "expect": [409], "read": "getItem", "key": ["/sku"], "bind": {"id": "$response.body#/id"}}`,
			[]Conflict{{Kind: DuplicateCreate, Expect: []int{409}, Read: "getItem", Key: []string{"/sku"}, Bind: map[string]string{"id": "$response.body#/id"}}}},
		{"only a kind", `{"kind": "transition"}`, []Conflict{{Kind: Transition}}},
		{"a list", `[{"kind": "idempotency-key", "header": "Idempotency-Key", "concurrency": 4}, {"kind": "capacity", "invariant": {"read": "getItem", "field": "/stock", "min": 0}}]`,
			[]Conflict{{Kind: IdempotencyKey, Header: "Idempotency-Key", Concurrency: 4}, {Kind: Capacity, Invariant: &Invariant{Read: "getItem", Field: "/stock", Min: ptr(0)}}}},
		{"version header", `{"kind": "stale-update", "version": {"header": "ETag"}}`, []Conflict{{Kind: StaleUpdate, Version: &Version{Header: "ETag"}}}},
		{"racers", `{"kind": "transition", "racers": ["cancelOrder", "shipOrder"]}`, []Conflict{{Kind: Transition, Racers: []string{"cancelOrder", "shipOrder"}}}},
		{"body of any JSON", `{"kind": "delete-in-use", "dependent": "createOrder", "body": {"n": 1, "s": "$response.body#/id"}}`,
			[]Conflict{{Kind: DeleteInUse, Dependent: "createOrder", Body: map[string]any{"n": 1.0, "s": "$response.body#/id"}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Parse("op", decode(t, tc.value))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Parse =\n%#v\nwant\n%#v", got, tc.want)
			}
		})
	}
}

func TestParseAcceptsGoValues(t *testing.T) {
	// A YAML decoder hands over ints and map[string]any; they validate like JSON numbers.
	got, err := Parse("op", map[string]any{"kind": "capacity", "concurrency": 8, "expect": []int{409},
		"invariant": map[string]any{"read": "getItem", "field": "/stock", "max": 10}})
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if got[0].Concurrency != 8 || *got[0].Invariant.Max != 10 || got[0].Expect[0] != 409 {
		t.Errorf("Parse = %+v", got[0])
	}
}

func TestParseRejects(t *testing.T) {
	for _, tc := range []struct {
		name, value string
		want        string // the whole message
	}{
		{"unknown kind", `{"kind": "dupe"}`,
			`createItem: x-conflict.kind: "dupe" is not one of duplicate-create, stale-update, transition, delete-in-use, idempotency-key, capacity`},
		{"unknown kind and a field it does not allow", `{"kind": "dupe", "key": ["/sku"]}`,
			`createItem: x-conflict.kind: "dupe" is not one of duplicate-create, stale-update, transition, delete-in-use, idempotency-key, capacity (and 1 more problem)`},
		{"missing invariant.read in a list", `[{"kind": "transition"}, {"kind": "capacity", "invariant": {"field": "/stock", "min": 0}}]`,
			`createItem: x-conflict[1].invariant: missing field "read"`},
		{"key on another kind", `{"kind": "stale-update", "key": ["/sku"]}`,
			`createItem: x-conflict.key: not allowed for kind stale-update (only for duplicate-create)`},
		{"racers on another kind", `{"kind": "capacity", "racers": ["a"]}`,
			`createItem: x-conflict.racers: not allowed for kind capacity (only for transition)`},
		{"unknown field", `{"kind": "duplicate-create", "retries": 3}`,
			`createItem: x-conflict.retries: unknown field (known: kind, expect, subject, read, bind, key, version, racers, dependent, resolve, header, invariant, body, concurrency)`},
		{"unknown invariant field", `{"kind": "capacity", "invariant": {"read": "getItem", "field": "/stock", "min": 0, "low": 1}}`,
			`createItem: x-conflict.invariant.low: unknown field (known: read, field, min, max)`},
		{"no kind", `{"expect": [409]}`, `createItem: x-conflict: missing field "kind"`},
		{"status out of range", `{"kind": "duplicate-create", "expect": [42]}`,
			`createItem: x-conflict.expect[0]: 42 is not an HTTP status code: must be at least 100, got 42`},
		{"status a string", `{"kind": "duplicate-create", "expect": ["409"]}`,
			`createItem: x-conflict.expect[0]: must be an integer, got string "409"`},
		{"repeated expect", `{"kind": "duplicate-create", "expect": [409, 409]}`, `createItem: x-conflict.expect: 409 is listed twice`},
		{"empty expect", `{"kind": "duplicate-create", "expect": []}`, `createItem: x-conflict.expect: must not be empty`},
		{"version with both", `{"kind": "stale-update", "version": {"header": "ETag", "field": "/version"}}`,
			`createItem: x-conflict.version: needs exactly one of header, field`},
		{"empty version", `{"kind": "stale-update", "version": {}}`, `createItem: x-conflict.version: needs exactly one of header, field`},
		{"version field not a pointer", `{"kind": "stale-update", "version": {"field": "version"}}`,
			`createItem: x-conflict.version.field: "version" is not a JSON pointer (RFC 6901) to a member, not the whole document`},
		{"key not a pointer", `{"kind": "duplicate-create", "key": ["sku"]}`,
			`createItem: x-conflict.key[0]: "sku" is not a JSON pointer (RFC 6901)`},
		{"bind not an expression", `{"kind": "duplicate-create", "bind": {"id": "id"}}`,
			`createItem: x-conflict.bind.id: "id" is not an OpenAPI runtime expression, e.g. $response.body#/id or $response.header.Location`},
		{"empty subject", `{"kind": "stale-update", "subject": ""}`, `createItem: x-conflict.subject: must not be empty`},
		{"concurrency too low", `{"kind": "transition", "concurrency": 1}`, `createItem: x-conflict.concurrency: must be at least 2, got 1`},
		{"concurrency too high", `{"kind": "transition", "concurrency": 1000}`, `createItem: x-conflict.concurrency: must be at most 256, got 1000`},
		{"concurrency not an integer", `{"kind": "transition", "concurrency": 2.5}`, `createItem: x-conflict.concurrency: must be an integer, got number 2.5`},
		{"invariant without a bound", `{"kind": "capacity", "invariant": {"read": "getItem", "field": "/stock"}}`,
			`createItem: x-conflict.invariant: needs min or max`},
		{"header with a space", `{"kind": "idempotency-key", "header": "Idempotency Key"}`,
			`createItem: x-conflict.header: "Idempotency Key" is not an HTTP field name (RFC 9110 token)`},
		{"empty racers", `{"kind": "transition", "racers": []}`, `createItem: x-conflict.racers: must not be empty`},
		{"empty list", `[]`, `createItem: x-conflict: must not be an empty list`},
		{"list of strings", `["duplicate-create"]`, `createItem: x-conflict[0]: must be an object, got string "duplicate-create"`},
		{"a string", `"duplicate-create"`, `createItem: x-conflict: must be a conflict object or a list of them, got string "duplicate-create"`},
		{"null", `null`, `createItem: x-conflict: must be a conflict object or a list of them, got null`},
		{"two bad elements", `[{"kind": "dupe"}, {"kind": "transition", "concurrency": 0}]`,
			`createItem: x-conflict[0].kind: "dupe" is not one of duplicate-create, stale-update, transition, delete-in-use, idempotency-key, capacity (and 1 more problem)`},
		{"odd unknown field", `{"kind": "transition", "re tries": 1}`, `createItem: x-conflict["re tries"]: unknown field (known: kind, expect, subject, read, bind, key, version, racers, dependent, resolve, header, invariant, body, concurrency)`},
		{"empty bind name", `{"kind": "transition", "bind": {"": "$request.body"}}`, `createItem: x-conflict.bind: names must not be empty`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("createItem", decode(t, tc.value))
			if err == nil {
				t.Fatalf("%s is accepted", tc.value)
			}
			if got := err.Error(); got != tc.want {
				t.Errorf("error\n got %s\nwant %s", got, tc.want)
			}
			var xe *Error
			if !errors.As(err, &xe) || xe.Operation != "createItem" {
				t.Errorf("error %T is not an *Error naming the operation", err)
			}
		})
	}
}

// TestFieldsMatchSchema keeps the Go types (which the "known:" lists come from) in step with the schema.
func TestFieldsMatchSchema(t *testing.T) {
	var s struct {
		Defs map[string]struct {
			Properties map[string]struct {
				Properties map[string]any `json:"properties"`
			} `json:"properties"`
		} `json:"$defs"`
	}
	if err := json.NewDecoder(bytes.NewReader(openapi.XConflictSchema)).Decode(&s); err != nil {
		t.Fatal(err)
	}
	props := s.Defs["conflict"].Properties
	for _, tc := range []struct {
		name string
		got  []string
		want []string
	}{
		{"conflict", jsonFields(reflect.TypeFor[Conflict]()), slices.Collect(maps.Keys(props))},
		{"invariant", jsonFields(reflect.TypeFor[Invariant]()), slices.Collect(maps.Keys(props["invariant"].Properties))},
		{"version", jsonFields(reflect.TypeFor[Version]()), slices.Collect(maps.Keys(props["version"].Properties))},
	} {
		slices.Sort(tc.want)
		if got := slices.Sorted(slices.Values(tc.got)); !slices.Equal(got, tc.want) {
			t.Errorf("%s: Go fields %v, schema properties %v", tc.name, got, tc.want)
		}
	}
	sch, err := compileSchema()
	if err != nil {
		t.Fatal(err)
	}
	for field, kind := range map[string]Kind{"key": DuplicateCreate, "version": StaleUpdate, "racers": Transition,
		"dependent": DeleteInUse, "header": IdempotencyKey, "invariant": Capacity} {
		if got := sch.onlyFor[field]; got != string(kind) {
			t.Errorf("%s belongs to %q, want %q", field, got, kind)
		}
	}
}

func TestOperationRefs(t *testing.T) {
	c := Conflict{Kind: Transition, Subject: "createOrder", Read: "getOrder", Racers: []string{"cancelOrder", "shipOrder"},
		Invariant: &Invariant{Read: "getItem"}}
	got := c.OperationRefs()
	want := []Ref{{"subject", "createOrder"}, {"read", "getOrder"}, {"racers", "cancelOrder"}, {"racers", "shipOrder"}, {"invariant.read", "getItem"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("OperationRefs = %v, want %v", got, want)
	}
}

func TestErrorIsOneLine(t *testing.T) {
	for _, v := range []any{
		map[string]any{"kind": "dupe\nx"},
		map[string]any{"kind": "capacity", "invariant": map[string]any{"read": "getItem", "field": "/stock", "min": 0, "a\nb": 1}},
		map[string]any{"kind": "transition", "bind": map[string]any{"x\ny": "id"}},
	} {
		_, err := Parse("op", v)
		if err == nil {
			t.Fatalf("%v is accepted", v)
		}
		if strings.Contains(err.Error(), "\n") {
			t.Errorf("error spans lines: %q", err)
		}
	}
}
