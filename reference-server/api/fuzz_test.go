package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"mime"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/conflictcheck/conflictcheck/reference-server/api"
	"github.com/conflictcheck/conflictcheck/reference-server/store"
)

// FuzzHandlers sends arbitrary requests to the API and checks what must hold for any input:
// no 5xx, every error is a problem whose status is the HTTP status, and a rejected request
// changes nothing. In paths, {item} and {order} stand for an existing item and order.
func FuzzHandlers(f *testing.F) {
	seeds := []struct {
		method            uint8
		path, ct, ifMatch string
		key               string
		body              string
	}{
		{0, "/items", "application/json", "", "", `{"sku":"A","name":"n","price":1,"stock":1}`},
		{0, "/items", "application/json", "", "", `{"sku":"SEED","name":"n","price":1,"stock":1}`},
		{1, "/items/{item}", "application/json", `"v1"`, "", `{"name":"n","price":1,"stock":1}`},
		{1, "/items/{item}", "application/json", `W/"v1", *`, "", `{"name":"n"}`},
		{2, "/items/{item}", "application/json", "", "", `{"version":1,"stock":-1}`},
		{3, "/items/{item}", "", "", "", ``},
		{0, "/orders", "application/json", "", "k", `{"itemId":"{item}","quantity":1}`},
		{0, "/orders/{order}/cancel", "", "", "", ``},
		{0, "/orders/{order}/ship", "text/plain", "", "", `x`},
		{4, "/items?sku=SEED&limit=2", "", "", "", ``},
		{4, "/orders/{order}", "", "", "", ``},
		{0, "/items", "application/json", "", "", `{"sku":"A","name":"n","price":1e99,"stock":1}`},
		{2, "/items/{item}", "application/merge-patch+json", "", "", `{"version":18446744073709551616}`},
	}
	for _, s := range seeds {
		f.Add(s.method, s.path, s.ct, s.ifMatch, s.key, []byte(s.body))
	}
	methods := []string{"POST", "PUT", "PATCH", "DELETE", "GET", "HEAD", "OPTIONS"}
	f.Fuzz(func(t *testing.T, m uint8, path, ct, ifMatch, key string, body []byte) {
		ctx := context.Background()
		st := store.NewMemory(store.Options{})
		it, err := st.CreateItem(ctx, store.NewItem{SKU: "SEED", Name: "seed", Price: 1, Stock: 5})
		if err != nil {
			t.Fatal(err)
		}
		o, err := st.CreateOrder(ctx, store.NewOrder{ItemID: it.ID, Quantity: 1})
		if err != nil {
			t.Fatal(err)
		}
		fill := strings.NewReplacer("{item}", it.ID, "{order}", o.ID)
		path, body = fill.Replace(path), []byte(fill.Replace(string(body)))
		if !strings.HasPrefix(path, "/") {
			path = "/" + path
		}
		u, err := url.ParseRequestURI(path)
		if err != nil {
			t.Skip()
		}
		req := httptest.NewRequest(methods[int(m)%len(methods)], "http://127.0.0.1/", bytes.NewReader(body))
		req.URL = u
		req.RequestURI = u.RequestURI()
		if ct != "" {
			req.Header.Set("Content-Type", ct)
		}
		if ifMatch != "" {
			req.Header.Set("If-Match", ifMatch)
		}
		if key != "" {
			req.Header.Set("Idempotency-Key", key)
		}
		before := snapshot(t, st, it.ID, o.ID)
		rec := httptest.NewRecorder()
		api.New(st, api.Options{}).ServeHTTP(rec, req)

		if rec.Code >= 500 {
			t.Fatalf("%s %s → %d: %s", req.Method, path, rec.Code, rec.Body)
		}
		if rec.Code < 400 {
			return
		}
		if mt, _, _ := mime.ParseMediaType(rec.Header().Get("Content-Type")); mt != "application/problem+json" {
			t.Fatalf("%s %s → %d with Content-Type %q", req.Method, path, rec.Code, rec.Header().Get("Content-Type"))
		}
		var p struct {
			Type, Title, Detail string
			Status              int
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil || p.Status != rec.Code || p.Type == "" || p.Title == "" || p.Detail == "" {
			t.Fatalf("%s %s → %d with problem %s (%v)", req.Method, path, rec.Code, rec.Body, err)
		}
		if after := snapshot(t, st, it.ID, o.ID); after != before {
			t.Fatalf("%s %s → %d changed the state:\n%s\n→\n%s", req.Method, path, rec.Code, before, after)
		}
	})
}

// snapshot renders everything a request could change.
func snapshot(t *testing.T, st store.Store, itemID, orderID string) string {
	ctx := context.Background()
	items, err := st.ListItems(ctx, store.ItemFilter{})
	if err != nil {
		t.Fatal(err)
	}
	o, err := st.GetOrder(ctx, orderID)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(map[string]any{"items": items, "order": o, "item": itemID})
	return string(b)
}

// TestHEADAndOPTIONS pins what the mux does with methods the API does not declare.
func TestHEADAndOPTIONS(t *testing.T) {
	h := api.New(store.NewMemory(store.Options{}), api.Options{})
	for _, m := range []string{http.MethodHead, http.MethodOptions} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(m, "/items", nil))
		if rec.Code >= 500 {
			t.Errorf("%s /items → %d", m, rec.Code)
		}
	}
}
