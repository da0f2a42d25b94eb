package synth

import (
	"errors"
	"fmt"
	"net/mail"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/conflictcheck/conflictcheck/internal/runtimeexpr"
)

// stringFormats are the format checks values are validated with, on top of kin-openapi's
// (byte, date, date-time): a value or example that fails them is not used.
var stringFormats = map[string]openapi3.StringFormatValidator{
	"uuid":     openapi3.NewRegexpFormatValidator(openapi3.FormatOfStringForUUIDOfRFC9562),
	"email":    openapi3.NewCallbackValidator(checkEmail),
	"ipv4":     openapi3.NewIPValidator(true),
	"ipv6":     openapi3.NewIPValidator(false),
	"hostname": openapi3.NewCallbackValidator(checkHostname),
	"uri":      openapi3.NewCallbackValidator(checkURI),
	"url":      openapi3.NewCallbackValidator(checkURI),
}

// checkEmail accepts a bare addr-spec (no display name, no angle brackets).
func checkEmail(s string) error {
	a, err := mail.ParseAddress(s)
	if err != nil {
		return fmt.Errorf("not an email address: %w", err)
	}
	if a.Address != s {
		return errors.New("not a bare email address")
	}
	return nil
}

var hostLabel = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$`)

// checkHostname accepts an RFC 1123 host name.
func checkHostname(s string) error {
	if s == "" || len(s) > 253 {
		return errors.New("a host name has 1 to 253 characters")
	}
	for _, label := range strings.Split(strings.TrimSuffix(s, "."), ".") {
		if !hostLabel.MatchString(label) {
			return fmt.Errorf("bad host name label %q", label)
		}
	}
	return nil
}

// checkURI accepts an absolute URI.
func checkURI(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("not a URI: %w", err)
	}
	if !u.IsAbs() {
		return errors.New("not an absolute URI")
	}
	return nil
}

// validateAs checks v against s as a request, as kin-openapi validates one: with JSON Schema
// 2020-12 when modern (s uses OpenAPI 3.1 keywords: the built-in validator misjudges some of
// them, such as patternProperties), else with the built-in OpenAPI 3.0 validator. Strict
// validation reports every error; the other stops at the first.
func validateAs(s *openapi3.Schema, v any, strict, modern bool) error {
	opts := []openapi3.SchemaValidationOption{
		openapi3.VisitAsRequest(),
		openapi3.WithStringFormatValidators(stringFormats),
	}
	switch {
	case modern:
		opts = append(opts, openapi3.EnableJSONSchema2020())
	case strict:
		opts = append(opts, openapi3.MultiErrors())
	default:
		opts = append(opts, openapi3.FailFast())
	}
	return visit(s, v, opts...)
}

// visit runs VisitJSON. kin-openapi documents VisitJSON on a schema that did not pass Validate
// as undefined behaviour, and callers may hand us any schema: a panic there is reported as an
// error so that synthesis never takes the process down.
func visit(s *openapi3.Schema, v any, opts ...openapi3.SchemaValidationOption) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("validator failed on this schema: %v", r)
		}
	}()
	return s.VisitJSON(v, opts...)
}

// parsePointer splits a JSON pointer (RFC 6901) into unescaped tokens.
func parsePointer(p string) ([]string, error) {
	if p == "" {
		return nil, nil
	}
	if !strings.HasPrefix(p, "/") {
		return nil, fmt.Errorf("JSON pointer %q does not start with /", p)
	}
	tokens := strings.Split(p[1:], "/")
	for i, t := range tokens {
		tokens[i] = runtimeexpr.UnescapeToken(t)
	}
	return tokens, nil
}

// schemaAt returns the schema for the member at tokens, looking through allOf, oneOf and anyOf.
func schemaAt(s *openapi3.Schema, tokens []string, seen map[*openapi3.Schema]bool) *openapi3.Schema {
	if s == nil || seen[s] {
		return nil
	}
	if len(tokens) == 0 {
		return s
	}
	seen[s] = true
	defer delete(seen, s)
	tok, rest := tokens[0], tokens[1:]
	if p := s.Properties[tok]; p != nil {
		if found := schemaAt(p.Value, rest, seen); found != nil {
			return found
		}
	}
	if i, err := strconv.Atoi(tok); err == nil && i >= 0 {
		if i < len(s.PrefixItems) {
			return schemaAt(s.PrefixItems[i].Value, rest, seen)
		}
		if s.Items != nil {
			return schemaAt(s.Items.Value, rest, seen)
		}
	}
	for _, list := range []openapi3.SchemaRefs{s.AllOf, s.OneOf, s.AnyOf} {
		for _, ref := range list {
			if found := schemaAt(ref.Value, tokens, seen); found != nil {
				return found
			}
		}
	}
	if ap := s.AdditionalProperties.Schema; ap != nil && s.Properties[tok] == nil {
		return schemaAt(ap.Value, rest, seen)
	}
	return nil
}

// setAt sets the member of v at the JSON pointer ptr to u (adding an object member if needed);
// the parent must exist.
func setAt(v any, ptr string, u any) (any, error) {
	if ptr == "" {
		return u, nil
	}
	cut := strings.LastIndex(ptr, "/")
	parent, err := runtimeexpr.Pointer(v, ptr[:cut])
	if err != nil {
		return nil, fmt.Errorf("the value has no member at %s", ptr[:cut])
	}
	last := runtimeexpr.UnescapeToken(ptr[cut+1:])
	switch p := parent.(type) {
	case map[string]any:
		p[last] = u
	case []any:
		i, err := strconv.Atoi(last)
		if err != nil || i < 0 || i >= len(p) {
			return nil, fmt.Errorf("no array element %q", last)
		}
		p[i] = u
	default:
		return nil, fmt.Errorf("the value at the parent of %q is not an object or array", last)
	}
	return v, nil
}

// invalidError is a validation error told in one line per failure ("at /sku: ..."), instead
// of kin-openapi's multi-line dump of schema and value; the original stays in the chain.
type invalidError struct {
	msg string
	err error
}

func (e *invalidError) Error() string { return e.msg }
func (e *invalidError) Unwrap() error { return e.err }

// leadingAt is how JSON Schema 2020-12 errors of kin-openapi start: the location concise
// already gives.
var leadingAt = regexp.MustCompile(`^(error at "[^"]*": )?(at '[^']*': )?`)

// concise shortens a validation error to its failures: where, and why.
func concise(err error) error {
	if err == nil {
		return nil
	}
	var lines []string
	var add func(e error, at []string)
	add = func(e error, at []string) {
		switch x := e.(type) {
		case openapi3.MultiError:
			for _, sub := range x {
				add(sub, at)
			}
			return
		case *openapi3.SchemaError:
			ptr := append(slices.Clone(at), x.JSONPointer()...)
			var causes openapi3.MultiError
			if x.SchemaField == "allOf" || x.SchemaField == "" {
				if errors.As(x.Origin, &causes) {
					add(causes, ptr) // the members' failures say more than "allOf failed"
					return
				}
			}
			reason := leadingAt.ReplaceAllString(strings.Join(strings.Fields(x.Reason), " "), "")
			if reason == "" {
				reason = fmt.Sprintf("does not satisfy %q", x.SchemaField)
			}
			if len(ptr) > 0 {
				reason = "at /" + strings.Join(ptr, "/") + ": " + reason
			}
			lines = append(lines, reason)
			return
		}
		lines = append(lines, strings.Join(strings.Fields(e.Error()), " "))
	}
	add(err, nil)
	if len(lines) > 3 {
		lines = append(lines[:3], fmt.Sprintf("and %d more", len(lines)-3))
	}
	return &invalidError{msg: strings.Join(lines, "; "), err: err}
}

// memberError locates an error inside the value: at /items/0/sku.
type memberError struct {
	path string
	err  error
}

func (e *memberError) Error() string {
	segments := strings.Split(e.path, "/")
	path := e.path
	if len(segments) > 7 {
		path = strings.Join(segments[:4], "/") + "/…/" + strings.Join(segments[len(segments)-2:], "/")
	}
	return "at " + path + ": " + e.err.Error()
}

func (e *memberError) Unwrap() error { return e.err }

// atMember locates err at member token (a property name or an index).
func atMember(token string, err error) error {
	if m, ok := err.(*memberError); ok {
		return &memberError{path: "/" + runtimeexpr.EscapeToken(token) + m.path, err: m.err}
	}
	return &memberError{path: "/" + runtimeexpr.EscapeToken(token), err: err}
}
