package engine

import (
	"cmp"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"

	"golang.org/x/net/http/httpguts"
)

// head is a request as the strategies that frame it by hand (lastbyte, h2) send it: its
// method, request target and the caller's header fields in a stable order, each checked so
// that it cannot break the framing.
type head struct {
	method string  // GET when the request names none
	uri    string  // path and query
	fields []field // sorted by name, values in the caller's order
	length bool    // declare Content-Length: there is a body, or the method expects one
}

// field is one header field as the caller spelled its name.
type field struct{ name, value string }

// newHead builds the head of req, sent to rawURL (its resolved URL), leaving out the fields
// drop names: those the strategy sets itself or its protocol forbids.
func newHead(rawURL string, req Request, drop func(name string) bool) (head, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return head{}, fmt.Errorf("request URL %q: %w", rawURL, err)
	}
	h := head{method: cmp.Or(req.Method, http.MethodGet), uri: u.RequestURI()}
	if !httpguts.ValidHeaderFieldName(h.method) {
		return head{}, fmt.Errorf("invalid method %q", h.method)
	}
	for _, k := range slices.Sorted(maps.Keys(req.Header)) {
		if drop(k) {
			continue
		}
		if !httpguts.ValidHeaderFieldName(k) {
			return head{}, fmt.Errorf("invalid header name %q", k)
		}
		for _, v := range req.Header[k] {
			if !httpguts.ValidHeaderFieldValue(v) {
				return head{}, fmt.Errorf("invalid value for header %s", k)
			}
			h.fields = append(h.fields, field{k, v})
		}
	}
	switch h.method {
	case http.MethodPost, http.MethodPut, http.MethodPatch:
		h.length = true
	default:
		h.length = len(req.Body) > 0
	}
	return h, nil
}
