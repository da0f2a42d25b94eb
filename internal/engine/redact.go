package engine

import (
	"net/http"
	"strings"
)

// Redacted replaces the value of every sensitive header in a captured request.
const Redacted = "[redacted]"

// sensitive are header names whose values are credentials wherever they appear.
var sensitive = map[string]bool{
	"Authorization":       true,
	"Proxy-Authorization": true,
	"Cookie":              true,
	"Set-Cookie":          true,
	"X-Api-Key":           true,
	"Api-Key":             true,
	"X-Auth-Token":        true,
	"X-Csrf-Token":        true,
	"X-Xsrf-Token":        true,
}

// IsSensitive reports whether a header named name carries a credential: the well-known
// credential headers, and any whose name mentions a token, secret, password or API key.
// Idempotency-Key is not a secret: it is evidence.
func IsSensitive(name string) bool {
	name = http.CanonicalHeaderKey(name)
	if sensitive[name] {
		return true
	}
	l := strings.ToLower(name)
	for _, w := range []string{"token", "secret", "password", "passwd", "api-key", "apikey", "session"} {
		if strings.Contains(l, w) {
			return true
		}
	}
	return false
}

// Redact returns a copy of h with the values of sensitive headers and of the named secret
// headers replaced by Redacted. Captured requests and responses both pass through it, so a
// credential (Authorization sent, Set-Cookie received) never reaches an Outcome.
func Redact(h http.Header, secrets []string) http.Header {
	out := h.Clone()
	redact(out, secrets)
	return out
}

// redact is Redact in place, for a header the engine owns (a response's).
func redact(h http.Header, secrets []string) {
	for k, vs := range h {
		if IsSensitive(k) || containsFold(secrets, k) {
			red := make([]string, len(vs))
			for i := range red {
				red[i] = Redacted
			}
			h[k] = red
		}
	}
}

func containsFold(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}

// capture is req as sent to t, redacted.
func (e *Engine) capture(t target, req Request) Captured {
	return Captured{
		Method:     req.Method,
		URL:        resolve(t, req.Path),
		Header:     Redact(req.Header, e.opts.Secrets),
		Body:       req.Body,
		PathParams: req.PathParams,
	}
}

// resolve joins a target base URL and a request path (which may carry a query).
func resolve(t target, path string) string {
	base := strings.TrimSuffix(t.raw, "/")
	if path == "" {
		return base + "/"
	}
	if !strings.HasPrefix(path, "/") {
		path = "/" + path
	}
	return base + path
}
