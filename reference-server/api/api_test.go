package api_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/conflictcheck/conflictcheck/reference-server/fault"
	"github.com/conflictcheck/conflictcheck/reference-server/store"
)

func newCorrect(t *testing.T) *client {
	return newServer(t, store.NewMemory(store.Options{}), fault.None, true)
}

func TestItems(t *testing.T) {
	c := newCorrect(t)
	created := c.mustCreate("SKU-1", 5)
	id := created.str(t, "id")
	if loc := created.Header.Get("Location"); loc != "/items/"+id {
		t.Errorf("Location = %q; want /items/%s", loc, id)
	}
	if et := created.Header.Get("ETag"); et != `"v1"` {
		t.Errorf("ETag = %q; want \"v1\"", et)
	}

	dup := c.do("POST", "/items", item("SKU-1", 1))
	want(t, dup, 409, "sku-taken")
	if dup.str(t, "existingId") != id || dup.str(t, "sku") != "SKU-1" {
		t.Errorf("sku-taken body %s; want existingId %s", dup.Body, id)
	}

	got := c.do("GET", "/items/"+id, nil)
	want(t, got, 200, "")
	if got.Header.Get("ETag") != `"v1"` || got.num(t, "stock") != 5 || got.str(t, "sku") != "SKU-1" {
		t.Errorf("GET = %s %v", got.Body, got.Header)
	}
	want(t, c.do("GET", "/items/nope", nil), 404, "not-found")

	list := c.do("GET", "/items?sku=SKU-1", nil)
	want(t, list, 200, "")
	if items := list.obj(t)["items"].([]any); len(items) != 1 {
		t.Errorf("list by sku = %s; want one item", list.Body)
	}
	if items := c.do("GET", "/items?sku=NONE", nil).obj(t)["items"].([]any); len(items) != 0 {
		t.Errorf("list of an unknown sku has %d items", len(items))
	}
	want(t, c.do("GET", "/items?limit=0", nil), 400, "malformed-request")

	replace := map[string]any{"name": "replaced", "price": 99, "stock": 7}
	want(t, c.do("PUT", "/items/"+id, replace), 428, "precondition-required")
	put := c.do("PUT", "/items/"+id, replace, "If-Match", `"v1"`)
	want(t, put, 200, "")
	if put.Header.Get("ETag") != `"v2"` || put.str(t, "name") != "replaced" || put.num(t, "version") != 2 {
		t.Errorf("PUT = %s %v", put.Body, put.Header)
	}
	stale := c.do("PUT", "/items/"+id, replace, "If-Match", `"v1"`)
	want(t, stale, 412, "precondition-failed")
	if stale.str(t, "currentETag") != `"v2"` || stale.num(t, "currentVersion") != 2 {
		t.Errorf("412 body %s; want the current ETag and version", stale.Body)
	}
	want(t, c.do("PUT", "/items/"+id, replace, "If-Match", `W/"v2"`), 412, "precondition-failed")
	want(t, c.do("PUT", "/items/"+id, replace, "If-Match", `"other", "v2"`), 200, "")
	want(t, c.do("PUT", "/items/"+id, replace, "If-Match", `*`), 200, "")
	want(t, c.do("PUT", "/items/nope", replace, "If-Match", `*`), 404, "not-found")

	patch := c.do("PATCH", "/items/"+id, map[string]any{"version": 4, "price": 5})
	want(t, patch, 200, "")
	if patch.num(t, "version") != 5 || patch.num(t, "price") != 5 || patch.str(t, "name") != "replaced" || patch.Header.Get("ETag") != `"v5"` {
		t.Errorf("PATCH = %s", patch.Body)
	}
	vm := c.do("PATCH", "/items/"+id, map[string]any{"version": 4, "price": 6})
	want(t, vm, 409, "version-mismatch")
	if vm.num(t, "currentVersion") != 5 || vm.str(t, "currentETag") != `"v5"` {
		t.Errorf("version-mismatch body %s; want the current version", vm.Body)
	}

	// An If-Match sent with PATCH or DELETE must hold too (RFC 9110 §13.1.1).
	want(t, c.do("PATCH", "/items/"+id, map[string]any{"version": 5, "name": "x"}, "If-Match", `"v4"`), 412, "precondition-failed")
	want(t, c.do("PATCH", "/items/"+id, map[string]any{"version": 4, "name": "x"}, "If-Match", `"v5"`), 409, "version-mismatch")
	want(t, c.do("PATCH", "/items/"+id, map[string]any{"version": 5, "name": "x"}, "If-Match", `"v5`), 400, "malformed-request")
	if got := c.do("PATCH", "/items/"+id, map[string]any{"version": 5, "name": "patched"}, "If-Match", `"v5"`); got.Status != 200 || got.num(t, "version") != 6 {
		t.Fatalf("PATCH with matching version and If-Match = %d %s", got.Status, got.Body)
	}
	del := c.do("DELETE", "/items/"+id, nil, "If-Match", `"v5"`)
	want(t, del, 412, "precondition-failed")
	if del.str(t, "currentETag") != `"v6"` {
		t.Errorf("412 on DELETE = %s; want the current ETag", del.Body)
	}
	want(t, c.do("DELETE", "/items/"+id, nil, "If-Match", `v6`), 400, "malformed-request")
	want(t, c.do("GET", "/items/"+id, nil), 200, "")
	want(t, c.do("DELETE", "/items/"+id, nil, "If-Match", `"v6"`), 204, "")
	want(t, c.do("DELETE", "/items/"+id, nil), 404, "not-found")
	want(t, c.do("GET", "/items/"+id, nil), 404, "not-found")
}

func TestOrders(t *testing.T) {
	c := newCorrect(t)
	id := c.mustCreate("ORD-1", 3).str(t, "id")
	o := c.do("POST", "/orders", map[string]any{"itemId": id, "quantity": 2})
	want(t, o, 201, "")
	oid := o.str(t, "id")
	if o.Header.Get("Location") != "/orders/"+oid || o.str(t, "status") != "placed" || o.num(t, "quantity") != 2 {
		t.Errorf("order = %s %v", o.Body, o.Header)
	}
	short := c.do("POST", "/orders", map[string]any{"itemId": id, "quantity": 2})
	want(t, short, 409, "insufficient-stock")
	if short.num(t, "available") != 1 || short.num(t, "requested") != 2 {
		t.Errorf("insufficient-stock body %s", short.Body)
	}
	want(t, c.do("POST", "/orders", map[string]any{"itemId": "00000000-0000-0000-0000-000000000000", "quantity": 1}), 422, "unknown-item")

	inUse := c.do("DELETE", "/items/"+id, nil)
	want(t, inUse, 409, "item-in-use")
	if !strings.Contains(string(inUse.Body), oid) {
		t.Errorf("item-in-use body %s; want the blocking order %s", inUse.Body, oid)
	}
	want(t, c.do("GET", "/orders/"+oid, nil), 200, "")
	want(t, c.do("GET", "/orders/nope", nil), 404, "not-found")

	cancel := c.do("POST", "/orders/"+oid+"/cancel", nil)
	want(t, cancel, 200, "")
	if cancel.str(t, "status") != "cancelled" {
		t.Errorf("cancel = %s", cancel.Body)
	}
	if stock := c.do("GET", "/items/"+id, nil).num(t, "stock"); stock != 3 {
		t.Errorf("stock after cancel = %d; want 3", stock)
	}
	ship := c.do("POST", "/orders/"+oid+"/ship", nil)
	want(t, ship, 409, "invalid-transition")
	if ship.str(t, "currentStatus") != "cancelled" {
		t.Errorf("invalid-transition body %s", ship.Body)
	}
	want(t, c.do("POST", "/orders/nope/ship", nil), 404, "not-found")
	want(t, c.do("DELETE", "/items/"+id, nil), 204, "")
}

func TestIdempotencyKey(t *testing.T) {
	c := newCorrect(t)
	id := c.mustCreate("IDEM-1", 2).str(t, "id")
	body := map[string]any{"itemId": id, "quantity": 1}
	first := c.do("POST", "/orders", body, "Idempotency-Key", "key-1")
	want(t, first, 201, "")
	replay := c.do("POST", "/orders", body, "Idempotency-Key", "key-1")
	want(t, replay, 201, "")
	if string(replay.Body) != string(first.Body) || replay.Header.Get("Location") != first.Header.Get("Location") || replay.Header.Get("Idempotent-Replayed") != "true" {
		t.Errorf("replay = %s %v; want the original body and Location, marked replayed", replay.Body, replay.Header)
	}
	if stock := c.do("GET", "/items/"+id, nil).num(t, "stock"); stock != 1 {
		t.Errorf("stock after a replay = %d; want 1 (one execution)", stock)
	}
	want(t, c.do("POST", "/orders", map[string]any{"itemId": id, "quantity": 2}, "Idempotency-Key", "key-1"), 422, "idempotency-key-reused")

	// An executed failure is replayed too, even after the cause is gone.
	big := map[string]any{"itemId": id, "quantity": 5}
	want(t, c.do("POST", "/orders", big, "Idempotency-Key", "key-2"), 409, "insufficient-stock")
	c.do("PUT", "/items/"+id, map[string]any{"name": "n", "price": 1, "stock": 10}, "If-Match", "*")
	again := c.do("POST", "/orders", big, "Idempotency-Key", "key-2")
	want(t, again, 409, "insufficient-stock")
	if again.Header.Get("Idempotent-Replayed") != "true" {
		t.Error("a replayed 409 is not marked replayed")
	}
	// A request that never executed does not hold its key.
	unknown := map[string]any{"itemId": "00000000-0000-0000-0000-000000000000", "quantity": 1}
	want(t, c.do("POST", "/orders", unknown, "Idempotency-Key", "key-3"), 422, "unknown-item")
	want(t, c.do("POST", "/orders", body, "Idempotency-Key", "key-3"), 201, "")

	want(t, c.do("POST", "/orders", body, "Idempotency-Key", ""), 400, "malformed-request")
	want(t, c.do("POST", "/orders", body, "Idempotency-Key", strings.Repeat("k", 256)), 400, "malformed-request")
	want(t, c.do("POST", "/orders", body, "Idempotency-Key", "a", "Idempotency-Key", "b"), 400, "malformed-request")
}

// TestInvalidInput sends every kind of bad request and checks the answer and that nothing
// changed.
func TestInvalidInput(t *testing.T) {
	c := newCorrect(t)
	id := c.mustCreate("BAD-1", 5).str(t, "id")
	item := "/items/" + id
	huge := `{"name":"` + strings.Repeat("x", 70<<10) + `","price":1,"stock":1}`
	tests := []struct {
		name, method, path string
		body               any
		hdr                []string
		status             int
		problem            string
	}{
		{"malformed JSON", "POST", "/items", `{"sku":`, nil, 400, "malformed-request"},
		{"two JSON values", "POST", "/items", `{} {}`, nil, 400, "malformed-request"},
		{"not an object", "POST", "/items", `[1]`, nil, 422, "validation-failed"},
		{"wrong types", "POST", "/items", `{"sku":1,"name":true,"price":"9","stock":1.5}`, nil, 422, "validation-failed"},
		{"missing fields", "POST", "/items", `{}`, nil, 422, "validation-failed"},
		{"unknown field", "POST", "/items", `{"sku":"X","name":"n","price":1,"stock":1,"admin":true}`, nil, 422, "validation-failed"},
		{"bad sku pattern", "POST", "/items", `{"sku":"-x","name":"n","price":1,"stock":1}`, nil, 422, "validation-failed"},
		{"negative stock", "POST", "/items", `{"sku":"X","name":"n","price":1,"stock":-1}`, nil, 422, "validation-failed"},
		{"wrong media type", "POST", "/items", `{}`, []string{"Content-Type", "text/plain"}, 415, "unsupported-media-type"},
		{"oversized body", "PUT", item, huge, []string{"If-Match", `"v1"`}, 413, "content-too-large"},
		{"invalid UTF-8", "POST", "/items", []byte("{\"sku\":\"\xff\"}"), nil, 400, "malformed-request"},
		{"unquoted If-Match", "PUT", item, `{"name":"n","price":1,"stock":1}`, []string{"If-Match", "v1"}, 400, "malformed-request"},
		{"If-Match star and tag", "PUT", item, `{"name":"n","price":1,"stock":1}`, []string{"If-Match", `*, "v1"`}, 400, "malformed-request"},
		{"PUT with sku", "PUT", item, `{"sku":"Y","name":"n","price":1,"stock":1}`, []string{"If-Match", `"v1"`}, 422, "validation-failed"},
		{"PATCH without version", "PATCH", item, `{"name":"n"}`, nil, 422, "validation-failed"},
		{"PATCH version zero", "PATCH", item, `{"version":0}`, nil, 422, "validation-failed"},
		{"PATCH null name", "PATCH", item, `{"version":1,"name":null}`, nil, 422, "validation-failed"},
		{"order quantity zero", "POST", "/orders", fmt.Sprintf(`{"itemId":%q,"quantity":0}`, id), nil, 422, "validation-failed"},
		{"order huge quantity", "POST", "/orders", fmt.Sprintf(`{"itemId":%q,"quantity":1e400}`, id), nil, 422, "validation-failed"},
	}
	before := c.do("GET", item, nil)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := c.do(tt.method, tt.path, tt.body, tt.hdr...)
			want(t, r, tt.status, tt.problem)
			if tt.problem == "validation-failed" && len(r.obj(t)["errors"].([]any)) == 0 {
				t.Errorf("validation-failed without errors: %s", r.Body)
			}
			after := c.do("GET", item, nil)
			if string(after.Body) != string(before.Body) || after.Header.Get("ETag") != before.Header.Get("ETag") {
				t.Errorf("state changed: %s → %s", before.Body, after.Body)
			}
			if n := len(c.do("GET", "/items", nil).obj(t)["items"].([]any)); n != 1 {
				t.Errorf("%d items after a rejected request; want 1", n)
			}
		})
	}
}

func TestUnroutedRequestsGetProblems(t *testing.T) {
	c := newServer(t, store.NewMemory(store.Options{}), fault.None, false)
	r := c.do("GET", "/nothing-here", nil)
	want(t, r, 404, "not-found")
	if ct := r.Header.Get("Content-Type"); ct != "application/problem+json" {
		t.Errorf("404 Content-Type = %q", ct)
	}
	r = c.do("DELETE", "/orders/x", nil)
	want(t, r, 405, "method-not-allowed")
	if allow := r.Header.Get("Allow"); !strings.Contains(allow, "GET") {
		t.Errorf("405 Allow = %q; want GET listed", allow)
	}
}

// TestCollisions races each conflict kind over HTTP: exactly one winner, the others rejected
// with the status reference.yaml declares, and the state is the winner's.
func TestCollisions(t *testing.T) {
	const n = 16
	c := newCorrect(t)
	t.Run("duplicate create", func(t *testing.T) {
		rs := c.collide(n, func(i int) (string, string, any, []string) {
			return "POST", "/items", item("DUP", i), nil
		})
		if got := statuses(rs); got[201] != 1 || got[409] != n-1 {
			t.Fatalf("statuses %v; want one 201 and %d 409", got, n-1)
		}
		if items := c.do("GET", "/items?sku=DUP", nil).obj(t)["items"].([]any); len(items) != 1 {
			t.Fatalf("%d items with the sku; want 1", len(items))
		}
	})
	t.Run("stale PUT", func(t *testing.T) {
		id := c.mustCreate("PUT", 1).str(t, "id")
		rs := c.collide(n, func(i int) (string, string, any, []string) {
			return "PUT", "/items/" + id, map[string]any{"name": fmt.Sprint("racer-", i), "price": i, "stock": i}, []string{"If-Match", `"v1"`}
		})
		if got := statuses(rs); got[200] != 1 || got[412] != n-1 {
			t.Fatalf("statuses %v; want one 200 and %d 412", got, n-1)
		}
		var winner resp
		for _, r := range rs {
			if r.Status == 200 {
				winner = r
			}
		}
		final := c.do("GET", "/items/"+id, nil)
		if string(final.Body) != string(winner.Body) || final.Header.Get("ETag") != `"v2"` {
			t.Fatalf("final %s; want the winner's %s at \"v2\"", final.Body, winner.Body)
		}
	})
	t.Run("stale PATCH", func(t *testing.T) {
		id := c.mustCreate("PATCH", 1).str(t, "id")
		rs := c.collide(n, func(i int) (string, string, any, []string) {
			return "PATCH", "/items/" + id, map[string]any{"version": 1, "name": fmt.Sprint("racer-", i)}, nil
		})
		if got := statuses(rs); got[200] != 1 || got[409] != n-1 {
			t.Fatalf("statuses %v; want one 200 and %d 409", got, n-1)
		}
	})
	t.Run("capacity", func(t *testing.T) {
		id := c.mustCreate("CAP", 3).str(t, "id")
		rs := c.collide(n, func(int) (string, string, any, []string) {
			return "POST", "/orders", map[string]any{"itemId": id, "quantity": 1}, nil
		})
		if got := statuses(rs); got[201] != 3 || got[409] != n-3 {
			t.Fatalf("statuses %v; want three 201 and %d 409", got, n-3)
		}
		if stock := c.do("GET", "/items/"+id, nil).num(t, "stock"); stock != 0 {
			t.Fatalf("stock %d; want 0", stock)
		}
	})
	t.Run("transition", func(t *testing.T) {
		id := c.mustCreate("TRANS", 1).str(t, "id")
		oid := c.do("POST", "/orders", map[string]any{"itemId": id, "quantity": 1}).str(t, "id")
		rs := c.collide(n, func(i int) (string, string, any, []string) {
			return "POST", "/orders/" + oid + []string{"/cancel", "/ship"}[i%2], nil, nil
		})
		if got := statuses(rs); got[200] != 1 || got[409] != n-1 {
			t.Fatalf("statuses %v; want one 200 and %d 409", got, n-1)
		}
	})
	t.Run("idempotency key", func(t *testing.T) {
		id := c.mustCreate("KEY", 100).str(t, "id")
		rs := c.collide(n, func(int) (string, string, any, []string) {
			return "POST", "/orders", map[string]any{"itemId": id, "quantity": 1}, []string{"Idempotency-Key", "same"}
		})
		ids := map[string]bool{}
		for _, r := range rs {
			switch r.Status {
			case 201:
				ids[r.str(t, "id")] = true
			case 409:
				want(t, r, 409, "idempotency-key-in-flight")
			default:
				t.Fatalf("status %d: %s", r.Status, r.Body)
			}
		}
		if len(ids) != 1 {
			t.Fatalf("%d distinct orders for one key; want 1", len(ids))
		}
		if stock := c.do("GET", "/items/"+id, nil).num(t, "stock"); stock != 99 {
			t.Fatalf("stock %d; want 99 (one execution)", stock)
		}
	})
	t.Run("delete in use", func(t *testing.T) {
		id := c.mustCreate("DEL", n).str(t, "id")
		rs := c.collide(n, func(i int) (string, string, any, []string) {
			if i%2 == 0 {
				return "DELETE", "/items/" + id, nil, nil
			}
			return "POST", "/orders", map[string]any{"itemId": id, "quantity": 1}, nil
		})
		deleted, ordered := 0, 0
		for i, r := range rs {
			switch {
			case r.Status == 204:
				deleted++
			case r.Status == 201:
				ordered++
			case i%2 == 0 && (r.Status == 409 || r.Status == 404):
			case i%2 == 1 && r.Status == 422:
			default:
				t.Fatalf("racer %d: %d %s", i, r.Status, r.Body)
			}
		}
		if deleted > 1 || (deleted == 1 && ordered > 0) {
			t.Fatalf("%d deletes and %d orders succeeded; the item must never vanish under placed orders", deleted, ordered)
		}
	})
}
