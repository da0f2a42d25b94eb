package api_test

import (
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/conflictcheck/conflictcheck/internal/spectest"
	"github.com/conflictcheck/conflictcheck/reference-server/fault"
)

// TestFaultsHappen shows, for every fault the memory store can carry, the defect it injects;
// per-replica-lock needs two replicas on PostgreSQL and is shown in the server tests.
func TestFaultsHappen(t *testing.T) {
	tests := []struct {
		fault fault.Name
		show  func(t *testing.T, c *client)
	}{
		{fault.Race, func(t *testing.T, c *client) {
			rs := c.collide(16, func(i int) (string, string, any, []string) { return "POST", "/items", item("RACE", i), nil })
			if got := statuses(rs); got[201] < 2 {
				t.Fatalf("statuses %v; want the race to let 2+ creates win", got)
			}
			if n := len(c.do("GET", "/items?sku=RACE", nil).obj(t)["items"].([]any)); n < 2 {
				t.Fatalf("%d items with the sku; want duplicates", n)
			}
		}},
		{fault.LostUpdate, func(t *testing.T, c *client) {
			id := c.mustCreate("LOST", 1).str(t, "id")
			want(t, c.do("PATCH", "/items/"+id, map[string]any{"version": 1, "name": "first"}), 200, "")
			want(t, c.do("PATCH", "/items/"+id, map[string]any{"version": 1, "name": "second"}), 200, "")
			want(t, c.do("PUT", "/items/"+id, map[string]any{"name": "third", "price": 1, "stock": 1}, "If-Match", `"v1"`), 200, "")
		}},
		{fault.Status500, func(t *testing.T, c *client) {
			c.mustCreate("S500", 1)
			want(t, c.do("POST", "/items", item("S500", 1)), 500, "internal")
		}},
		{fault.Status200, func(t *testing.T, c *client) {
			id := c.mustCreate("S200", 1).str(t, "id")
			want(t, c.do("POST", "/items", item("S200", 1)), 200, "")
			want(t, c.do("PATCH", "/items/"+id, map[string]any{"version": 9, "name": "x"}), 200, "")
			if got := c.do("GET", "/items/"+id, nil); got.str(t, "name") != "name of S200" {
				t.Fatalf("the 200 wrote: %s", got.Body)
			}
		}},
		{fault.Status400, func(t *testing.T, c *client) {
			c.mustCreate("S400", 1)
			want(t, c.do("POST", "/items", item("S400", 1)), 400, "sku-taken")
		}},
		{fault.PartialWrite, func(t *testing.T, c *client) {
			id := c.mustCreate("PART", 1).str(t, "id")
			want(t, c.do("PATCH", "/items/"+id, map[string]any{"version": 1, "price": 2}), 200, "")
			want(t, c.do("PATCH", "/items/"+id, map[string]any{"version": 1, "name": "loser", "price": 3}), 409, "version-mismatch")
			got := c.do("GET", "/items/"+id, nil)
			if got.str(t, "name") != "loser" || got.num(t, "price") != 2 {
				t.Fatalf("item %s; want the loser's name applied beside the winner's price", got.Body)
			}
		}},
		{fault.BadBody, func(t *testing.T, c *client) {
			c.mustCreate("BODY", 1)
			r := c.do("POST", "/items", item("BODY", 1))
			if r.Status != 409 {
				t.Fatalf("status %d; want 409", r.Status)
			}
			v, err := spectest.New()
			if err != nil {
				t.Fatal(err)
			}
			req := httptest.NewRequest("POST", "http://127.0.0.1/items", nil)
			if err := v.Check(req, r.Status, r.Header, r.Body); err == nil {
				t.Fatalf("409 body %s %v validates against reference.yaml; want it broken", r.Body, r.Header)
			}
		}},
		{fault.StaleETag, func(t *testing.T, c *client) {
			id := c.mustCreate("ETAG", 1).str(t, "id")
			want(t, c.do("PATCH", "/items/"+id, map[string]any{"version": 1, "name": "a"}), 200, "")
			conflict := c.do("PATCH", "/items/"+id, map[string]any{"version": 1, "name": "b"})
			want(t, conflict, 409, "version-mismatch")
			fresh := c.do("GET", "/items/"+id, nil)
			want(t, c.do("PATCH", "/items/"+id, map[string]any{"version": fresh.num(t, "version"), "name": "b"}), 409, "version-mismatch")
			want(t, c.do("PUT", "/items/"+id, map[string]any{"name": "b", "price": 1, "stock": 1}, "If-Match", fresh.Header.Get("ETag")), 412, "precondition-failed")
		}},
		{fault.IdempotencyRace, func(t *testing.T, c *client) {
			id := c.mustCreate("IRACE", 100).str(t, "id")
			rs := c.collide(16, func(int) (string, string, any, []string) {
				return "POST", "/orders", map[string]any{"itemId": id, "quantity": 1}, []string{"Idempotency-Key", "k"}
			})
			if got := statuses(rs); got[201] < 2 {
				t.Fatalf("statuses %v; want one key to execute 2+ times", got)
			}
			if stock := c.do("GET", "/items/"+id, nil).num(t, "stock"); stock > 98 {
				t.Fatalf("stock %d; want 2+ executions", stock)
			}
		}},
		{fault.DeleteOrphan, func(t *testing.T, c *client) {
			id := c.mustCreate("ORPH", 1).str(t, "id")
			oid := c.do("POST", "/orders", map[string]any{"itemId": id, "quantity": 1}).str(t, "id")
			want(t, c.do("DELETE", "/items/"+id, nil), 204, "")
			if o := c.do("GET", "/orders/"+oid, nil); o.str(t, "status") != "placed" {
				t.Fatalf("order %s; want a placed order left orphaned", o.Body)
			}
		}},
		{fault.StaleRead, func(t *testing.T, c *client) {
			created := c.mustCreate("STALE", 1)
			id := created.str(t, "id")
			want(t, c.do("GET", "/items/"+id, nil), 404, "not-found")
			time.Sleep(fault.StaleReadLag + 50*time.Millisecond)
			want(t, c.do("PATCH", "/items/"+id, map[string]any{"version": 1, "name": "new"}), 200, "")
			if got := c.do("GET", "/items/"+id, nil); got.str(t, "name") != "name of STALE" || got.Header.Get("ETag") != `"v1"` {
				t.Fatalf("read right after the write = %s %s; want the old state", got.Body, got.Header.Get("ETag"))
			}
		}},
	}
	covered := map[fault.Name]bool{fault.PerReplicaLock: true}
	for _, tt := range tests {
		covered[tt.fault] = true
		t.Run(string(tt.fault), func(t *testing.T) {
			t.Parallel()
			tt.show(t, newFaulty(t, tt.fault))
		})
	}
	for _, f := range fault.All {
		if !covered[f.Name] {
			t.Errorf("fault %s has no test showing its defect", f.Name)
		}
	}
}

func TestFaultParse(t *testing.T) {
	for _, f := range fault.All {
		got, err := fault.Parse(string(f.Name))
		if err != nil || got.Name != f.Name || len(got.Checks) == 0 {
			t.Errorf("Parse(%s) = %+v, %v", f.Name, got, err)
		}
	}
	if f, err := fault.Parse(""); err != nil || f.Name != fault.None {
		t.Errorf("Parse(\"\") = %+v, %v; want no fault", f, err)
	}
	_, err := fault.Parse("dupe")
	if err == nil || !strings.Contains(err.Error(), "race") {
		t.Errorf("Parse(dupe) err = %v; want the valid names listed", err)
	}
}
