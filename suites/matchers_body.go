package suites

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"mime"
	"net/http"
	"slices"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/routers"
	"github.com/onsi/gomega/types"

	"github.com/conflictcheck/conflictcheck/internal/engine"
	"github.com/conflictcheck/conflictcheck/internal/plan"
	"github.com/conflictcheck/conflictcheck/internal/respcheck"
	"github.com/conflictcheck/conflictcheck/internal/specload"
)

// RejectWithDeclaredBody is the conflict-body check against doc: every rejection with an
// expected status (the racers' in the scenario's Expect, the probe's last call in the probe's
// Expect) matches the response its operation declares for that status (status declared,
// headers, content type, schema, with kin-openapi's openapi3filter.ValidateResponse), and an
// application/problem+json body's status member equals the HTTP status. Other statuses are
// conflict-status's and no-server-error's business.
func RejectWithDeclaredBody(doc *specload.Document) types.GomegaMatcher {
	return newCheck(CheckConflictBody, func(ev *Evidence) (string, error) {
		if err := raced(ev); err != nil {
			return "", err
		}
		if doc == nil || doc.T == nil {
			return "", fmt.Errorf("%w: no document to validate against", ErrNoEvidence)
		}
		sc := ev.Scenario
		type rejection struct {
			label string
			call  plan.Call
			x     *engine.Exchange
		}
		var rs []rejection
		xs := ev.Result.Race.Exchanges
		for i := range xs {
			if rejectedWith(&xs[i], sc.Expect) {
				rs = append(rs, rejection{fmt.Sprintf("racer %d", i), racerCall(sc, i), &xs[i]})
			}
		}
		if p := sc.Probe; p != nil && len(ev.Result.Probe) > 0 && len(p.Calls) > 0 {
			i := len(ev.Result.Probe) - 1
			x := &ev.Result.Probe[i]
			call := p.Calls[min(i, len(p.Calls)-1)]
			if rejectedWith(x, p.Expect) {
				rs = append(rs, rejection{fmt.Sprintf("probe %d", i), call, x})
			}
		}
		if len(rs) == 0 {
			return "", fmt.Errorf("%w: no rejection with an expected status to check", ErrNoEvidence)
		}
		var details []string
		var rows []row
		for _, rj := range rs {
			if err := validateBody(doc, rj.call, rj.x); err != nil {
				details = append(details, fmt.Sprintf("%s (%d): %s", rj.label, rj.x.Status, firstLine(err.Error())))
				rows = append(rows, row{label: strings.TrimPrefix(rj.label, "racer "), x: rj.x})
			}
		}
		if len(details) == 0 {
			return "", nil
		}
		return failf(CheckConflictBody, ev, rows, details, "%d of %d rejections break the declared response", len(details), len(rs)), nil
	})
}

// validateBody checks one rejection against the response doc declares for call's operation.
func validateBody(doc *specload.Document, call plan.Call, x *engine.Exchange) error {
	op, ok := doc.Operation(call.Operation)
	if !ok {
		return fmt.Errorf("operation %s is not in the document", call.Operation)
	}
	req, err := http.NewRequestWithContext(context.Background(), x.Request.Method, x.Request.URL, nil)
	if err != nil {
		return fmt.Errorf("rebuild request: %w", err)
	}
	if err := againstDeclared(op, x); err != nil {
		return err
	}
	route := &routers.Route{Spec: doc.T, Path: op.Path, PathItem: op.Item, Method: op.Method, Operation: op.Op}
	return respcheck.Check(req.Context(), route, nil, req, x.Status, x.Header, x.Body, respcheck.Options{})
}

// againstDeclared compares what x answered with the response op declares for its status before
// the schema is validated, to say plainly what is wrong: a status not declared, a body where
// a body is declared but none came (an empty or text/plain rejection of an API that documents
// problem+json), or a content type the declaration does not list. A status declared without
// content accepts any body, an empty one included; nil means the schema check decides.
func againstDeclared(op specload.Operation, x *engine.Exchange) error {
	var ref *openapi3.ResponseRef
	if op.Op != nil && op.Op.Responses != nil {
		if ref = op.Op.Responses.Status(x.Status); ref == nil {
			ref = op.Op.Responses.Default()
		}
	}
	if ref == nil || ref.Value == nil {
		return fmt.Errorf("status %d is not declared for %s", x.Status, op.ID)
	}
	content := ref.Value.Content
	if len(content) == 0 {
		return nil
	}
	declared := strings.Join(slices.Sorted(maps.Keys(content)), " or ")
	ct := http.Header(x.Header).Get("Content-Type")
	empty := len(bytes.TrimSpace(x.Body)) == 0
	switch mt := content.Get(ct); {
	case mt == nil && ct == "" && empty:
		return fmt.Errorf("answered no body and no Content-Type; the spec declares %s for %d", declared, x.Status)
	case mt == nil && ct == "":
		return fmt.Errorf("answered a body without Content-Type; the spec declares %s for %d", declared, x.Status)
	case mt == nil:
		return fmt.Errorf("answered Content-Type %q; the spec declares %s for %d", ct, declared, x.Status)
	case empty && mt.Schema != nil && jsonMedia(ct):
		return fmt.Errorf("answered an empty body with Content-Type %q; the spec declares a body of %s for %d", ct, declared, x.Status)
	}
	return nil
}

// jsonMedia reports whether the media type ct is JSON (application/json, anything +json).
func jsonMedia(ct string) bool {
	mt, _, err := mime.ParseMediaType(ct)
	return err == nil && (mt == "application/json" || strings.HasSuffix(mt, "+json"))
}

// firstLine is s up to its first line break, trimmed.
func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return strings.TrimSpace(s)
}
