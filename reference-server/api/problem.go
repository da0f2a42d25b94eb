package api

import (
	"encoding/json"
	"net/http"
)

// problem is an RFC 9457 problem details body; Ext holds the extension members that tell the
// client how to resolve the problem (the current version, the blocking orders, ...).
type problem struct {
	Name   string // the last segment of the type URN
	Status int
	Detail string
	Ext    map[string]any
}

// problemTypePrefix makes a problem name a URN: stable, and resolvable without a host.
const problemTypePrefix = "urn:conflictcheck:problem:"

// body renders the problem as its JSON object.
func (p problem) body() map[string]any {
	m := make(map[string]any, 4+len(p.Ext))
	for k, v := range p.Ext {
		m[k] = v
	}
	m["type"] = problemTypePrefix + p.Name
	m["title"] = http.StatusText(p.Status)
	m["status"] = p.Status
	m["detail"] = p.Detail
	return m
}

// writeProblem sends the problem with its own status as application/problem+json.
func writeProblem(w http.ResponseWriter, p problem) {
	writeJSON(w, p.Status, "application/problem+json", p.body())
}

// writeJSON sends v as the response body with the given status and media type.
func writeJSON(w http.ResponseWriter, status int, contentType string, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		// Every value sent is built from plain types: failing to marshal one is a bug, and the
		// client still deserves a well-formed answer.
		status, contentType = http.StatusInternalServerError, "application/problem+json"
		b = []byte(`{"type":"urn:conflictcheck:problem:internal","title":"Internal Server Error","status":500,"detail":"the response could not be encoded"}`)
	}
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Content-Length", itoa(int64(len(b))))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

func badRequest(detail string) problem {
	return problem{Name: "malformed-request", Status: http.StatusBadRequest, Detail: detail}
}

func notFound(what string) problem {
	return problem{Name: "not-found", Status: http.StatusNotFound, Detail: what + " does not exist"}
}

// fieldError is one entry of a validation-failed problem: a JSON pointer and what is wrong there.
type fieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

func validationFailed(errs []fieldError) problem {
	return problem{Name: "validation-failed", Status: http.StatusUnprocessableEntity,
		Detail: "the request body is not valid: " + errs[0].Field + " " + errs[0].Message,
		Ext:    map[string]any{"errors": errs}}
}
