// Package auth gathers the credentials of a run against a real target: static headers from
// --header, --header-file and CONFLICTCHECK_HEADER_<NAME> variables, a header printed by
// --auth-command (re-run after a 401 and every --auth-refresh), and the client TLS
// configuration of --cert/--key, --ca and --insecure.
//
// Header values are secrets: no error of this package quotes one, and Source.Names lists the
// header names whose values the engine must redact.
package auth

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"strings"

	"golang.org/x/net/http/httpguts"
)

// EnvPrefix starts the name of every environment variable that gives a header.
const EnvPrefix = "CONFLICTCHECK_HEADER_"

// maxLine caps a line of --header-file: a generous bound for a JWT.
const maxLine = 1 << 20

// The reasons a "Name: value" line is refused; none quotes the line, which may be a secret.
const (
	reasonForm  = `want "Name: value"`
	reasonName  = "the name is not a valid HTTP header name"
	reasonValue = "the value holds a character no HTTP header may (a newline or a control character)"
)

// parseLine splits a "Name: value" line, trimming both parts; reason says why it is refused.
func parseLine(line string) (name, value, reason string) {
	name, value, ok := strings.Cut(line, ":")
	name, value = strings.TrimSpace(name), strings.TrimSpace(value)
	switch {
	case !ok || name == "":
		return "", "", reasonForm
	case !httpguts.ValidHeaderFieldName(name):
		return "", "", reasonName
	case !httpguts.ValidHeaderFieldValue(value):
		return "", "", reasonValue
	}
	return name, value, ""
}

// FromFlags parses each "Name: value" of --header; a name given twice is sent twice. Errors
// name the flag by position ("--header #2: ...") and never quote it: its value may be a secret.
func FromFlags(lines []string) (http.Header, error) {
	out := http.Header{}
	for i, l := range lines {
		name, value, reason := parseLine(l)
		if reason != "" {
			return nil, fmt.Errorf("--header #%d: %s", i+1, reason)
		}
		out.Add(name, value)
	}
	return out, nil
}

// FromFile reads --header-file: one "Name: value" per line, as --header takes it. Blank lines
// and lines starting with # are skipped, and CRLF line ends and a UTF-8 byte order mark are
// tolerated. Errors name the file and the line ("--header-file F line 3: ...") and never quote
// the line.
func FromFile(path string) (http.Header, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("--header-file %s: %w", path, pathCause(err))
	}
	defer f.Close()
	out := http.Header{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 4096), maxLine)
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSuffix(sc.Text(), "\r")
		if n == 1 {
			line = strings.TrimPrefix(line, "\uFEFF")
		}
		if t := strings.TrimSpace(line); t == "" || strings.HasPrefix(t, "#") {
			continue
		}
		name, value, reason := parseLine(line)
		if reason != "" {
			return nil, fmt.Errorf("--header-file %s line %d: %s", path, n, reason)
		}
		out.Add(name, value)
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, fmt.Errorf("--header-file %s line %d: longer than %d bytes", path, n+1, maxLine)
		}
		return nil, fmt.Errorf("--header-file %s: %w", path, pathCause(err))
	}
	return out, nil
}

// FromEnv takes the headers of the CONFLICTCHECK_HEADER_<NAME>=value entries of environ
// (os.Environ() form): NAME's underscores become dashes and it is canonicalised, so
// CONFLICTCHECK_HEADER_X_API_KEY sets X-Api-Key. Errors name the variable, never its value; an
// empty value, and two variables for one header, are errors.
func FromEnv(environ []string) (http.Header, error) {
	out := http.Header{}
	from := map[string]string{} // header name → the variable that set it
	for _, kv := range environ {
		v, value, ok := strings.Cut(kv, "=")
		if !ok || !strings.HasPrefix(v, EnvPrefix) {
			continue
		}
		raw := strings.TrimPrefix(v, EnvPrefix)
		value = strings.TrimSpace(value)
		name := http.CanonicalHeaderKey(strings.ReplaceAll(raw, "_", "-"))
		switch {
		case raw == "":
			return nil, fmt.Errorf("%s: no header name after %s", v, EnvPrefix)
		case !httpguts.ValidHeaderFieldName(name):
			return nil, fmt.Errorf("%s: %s", v, reasonName)
		case value == "":
			return nil, fmt.Errorf("%s: the value is empty", v)
		case !httpguts.ValidHeaderFieldValue(value):
			return nil, fmt.Errorf("%s: %s", v, reasonValue)
		case from[name] != "":
			return nil, fmt.Errorf("%s and %s both set %s: keep one", from[name], v, name)
		}
		from[name] = v
		out.Set(name, value)
	}
	return out, nil
}

// Merge layers header sets, later over earlier: a name present in a later layer replaces all
// of that name's values from the earlier ones. It gives Source.Static from env < file < flags:
// Merge(fromEnv, fromFile, fromFlags).
func Merge(layers ...http.Header) http.Header {
	out := http.Header{}
	for _, l := range layers {
		for name, values := range l {
			out[http.CanonicalHeaderKey(name)] = append([]string(nil), values...)
		}
	}
	return out
}

// pathCause drops the operation and path of a *fs.PathError, which the caller's message
// already names, keeping its cause (errors.Is(err, fs.ErrNotExist) still holds).
func pathCause(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
