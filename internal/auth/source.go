package auth

import (
	"context"
	"net/http"
	"sort"
)

// Source is every credential of a run: the static headers (Merge(env, file, flags)) and the
// optional --auth-command. A nil *Source has no credentials.
type Source struct {
	// Static are the headers of --header, --header-file and CONFLICTCHECK_HEADER_* variables.
	Static http.Header
	// Command is --auth-command, nil without one.
	Command *Command
}

// Header returns the headers to send: Static merged with the command's header, the command
// winning on a name clash. It is a copy the caller may modify; hand it back to Refresh after a
// 401.
func (s *Source) Header(ctx context.Context) (http.Header, error) {
	if s == nil {
		return http.Header{}, nil
	}
	if s.Command == nil {
		return Merge(s.Static), nil
	}
	h, err := s.Command.Header(ctx)
	if err != nil {
		return nil, err
	}
	return Merge(s.Static, h), nil
}

// Refresh runs the command again after used (a header Header returned) was refused with 401,
// unless it was refreshed since (see Command.Refresh). It does nothing without a command: a
// static credential cannot be renewed.
func (s *Source) Refresh(ctx context.Context, used http.Header) error {
	if s == nil || s.Command == nil {
		return nil
	}
	return s.Command.Refresh(ctx, used)
}

// Names are the canonical header names whose values are secrets, sorted: every static name
// and the command's header name (Authorization until a run printed "Name: value"; call Header
// first to learn it). They are what the engine must redact on top of engine.IsSensitive.
func (s *Source) Names() []string {
	if s == nil {
		return nil
	}
	set := map[string]bool{}
	for name := range s.Static {
		set[http.CanonicalHeaderKey(name)] = true
	}
	if s.Command != nil {
		for _, name := range s.Command.headerNames() {
			set[name] = true
		}
	}
	out := make([]string, 0, len(set))
	for name := range set {
		out = append(out, name)
	}
	sort.Strings(out)
	return out
}
