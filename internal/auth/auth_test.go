package auth

import (
	"errors"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// secret is in the value of every malformed header of these tests: no error may show it.
const secret = "s3cr3t-token-123"

// checkParsed compares a parser's result with a wanted header or a wanted error message, and
// fails when the error shows the secret.
func checkParsed(t *testing.T, got http.Header, err error, want http.Header, wantErr string) {
	t.Helper()
	if wantErr != "" {
		if err == nil {
			t.Fatalf("err = nil (header %v); want %q", got, wantErr)
		}
		if err.Error() != wantErr {
			t.Errorf("err = %q; want %q", err, wantErr)
		}
		if strings.Contains(err.Error(), secret) || strings.Contains(err.Error(), "s3cr3t") {
			t.Errorf("err = %q shows the secret value", err)
		}
		return
	}
	if err != nil {
		t.Fatalf("err = %v; want nil", err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("header = %v; want %v", got, want)
	}
}

func TestFromFlags(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		lines   []string
		want    http.Header
		wantErr string
	}{
		{"none", nil, http.Header{}, ""},
		{"one", []string{"Authorization: Bearer " + secret}, http.Header{"Authorization": {"Bearer " + secret}}, ""},
		{"trimmed and canonical", []string{"  x-api-key :  k1  "}, http.Header{"X-Api-Key": {"k1"}}, ""},
		{"a name twice is sent twice", []string{"X-A: 1", "x-a: 2"}, http.Header{"X-A": {"1", "2"}}, ""},
		{"a colon in the value", []string{"X-Basic: a:b:c"}, http.Header{"X-Basic": {"a:b:c"}}, ""},
		{"empty value", []string{"X-Empty:"}, http.Header{"X-Empty": {""}}, ""},
		{"no colon", []string{"X-A: ok", "Authorization Bearer " + secret}, nil, `--header #2: want "Name: value"`},
		{"no name", []string{": " + secret}, nil, `--header #1: want "Name: value"`},
		{"only the token", []string{secret}, nil, `--header #1: want "Name: value"`},
		{"bad name", []string{"Bad Name: " + secret}, nil, "--header #1: the name is not a valid HTTP header name"},
		{"CRLF in the value", []string{"X-A: b\r\nX-Injected: " + secret}, nil, "--header #1: the value holds a character no HTTP header may (a newline or a control character)"},
		{"NUL in the value", []string{"X-A: " + secret + "\x00"}, nil, "--header #1: the value holds a character no HTTP header may (a newline or a control character)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := FromFlags(tt.lines)
			checkParsed(t, got, err, tt.want, tt.wantErr)
		})
	}
}

func TestFromFile(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		content string
		want    http.Header
		wantErr string // "F" stands for the file's path
	}{
		{"empty file", "", http.Header{}, ""},
		{"lines, blanks and comments",
			"# credentials\n\nAuthorization: Bearer " + secret + "\n   # indented comment\n  \nX-Tenant: t1\nx-tenant: t2\n",
			http.Header{"Authorization": {"Bearer " + secret}, "X-Tenant": {"t1", "t2"}}, ""},
		{"CRLF", "X-A: 1\r\n\r\nX-B: 2\r\n", http.Header{"X-A": {"1"}, "X-B": {"2"}}, ""},
		{"byte order mark", "\uFEFFX-A: 1\n", http.Header{"X-A": {"1"}}, ""},
		{"no final newline", "X-A: 1", http.Header{"X-A": {"1"}}, ""},
		{"no colon, counting skipped lines", "# c\n\nX-A: 1\nBearer " + secret + "\n", nil, `--header-file F line 4: want "Name: value"`},
		{"bad name", "X-A: 1\nBad Name: " + secret + "\n", nil, "--header-file F line 2: the name is not a valid HTTP header name"},
		{"control character", "X-A: " + secret + "\x01\n", nil, "--header-file F line 1: the value holds a character no HTTP header may (a newline or a control character)"},
		{"a lone CR inside a line", "X-A: a\rX-B: " + secret + "\n", nil, "--header-file F line 1: the value holds a character no HTTP header may (a newline or a control character)"},
		{"line too long", "X-A: 1\nX-B: " + strings.Repeat("a", maxLine) + secret + "\n", nil, "--header-file F line 2: longer than 1048576 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "headers.txt")
			if err := os.WriteFile(path, []byte(tt.content), 0o600); err != nil {
				t.Fatal(err)
			}
			got, err := FromFile(path)
			checkParsed(t, got, err, tt.want, strings.Replace(tt.wantErr, "F", path, 1))
		})
	}
}

func TestFromFileUnreadable(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	missing := filepath.Join(dir, "nope.txt")
	_, err := FromFile(missing)
	if want := "--header-file " + missing + ": no such file or directory"; err == nil || err.Error() != want {
		t.Errorf("err = %v; want %q", err, want)
	}
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("err = %v; want one that is fs.ErrNotExist", err)
	}
	_, err = FromFile(dir)
	if want := "--header-file " + dir + ": is a directory"; err == nil || err.Error() != want {
		t.Errorf("err = %v; want %q", err, want)
	}
}

func TestFromEnv(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		environ []string
		want    http.Header
		wantErr string
	}{
		{"none", []string{"HOME=/root", "PATH=/bin"}, http.Header{}, ""},
		{"underscores become dashes, canonical",
			[]string{"HOME=/root", "CONFLICTCHECK_HEADER_X_API_KEY=" + secret, "CONFLICTCHECK_HEADER_authorization=Bearer b=c"},
			http.Header{"X-Api-Key": {secret}, "Authorization": {"Bearer b=c"}}, ""},
		{"value trimmed", []string{"CONFLICTCHECK_HEADER_X_A=  v  "}, http.Header{"X-A": {"v"}}, ""},
		{"prefix is case-sensitive", []string{"conflictcheck_header_X_A=v", "CONFLICTCHECK_HEADERX=v"}, http.Header{}, ""},
		{"an entry without =", []string{"CONFLICTCHECK_HEADER_X_A"}, http.Header{}, ""},
		{"empty value", []string{"CONFLICTCHECK_HEADER_X_A="}, nil, "CONFLICTCHECK_HEADER_X_A: the value is empty"},
		{"blank value", []string{"CONFLICTCHECK_HEADER_X_A= \t"}, nil, "CONFLICTCHECK_HEADER_X_A: the value is empty"},
		{"no name", []string{"CONFLICTCHECK_HEADER_=" + secret}, nil, "CONFLICTCHECK_HEADER_: no header name after CONFLICTCHECK_HEADER_"},
		{"bad name", []string{"CONFLICTCHECK_HEADER_X(A=" + secret}, nil, "CONFLICTCHECK_HEADER_X(A: the name is not a valid HTTP header name"},
		{"control character", []string{"CONFLICTCHECK_HEADER_X_A=" + secret + "\x7f"}, nil, "CONFLICTCHECK_HEADER_X_A: the value holds a character no HTTP header may (a newline or a control character)"},
		{"two variables for one header",
			[]string{"CONFLICTCHECK_HEADER_X_API_KEY=" + secret, "CONFLICTCHECK_HEADER_x_api_key=" + secret},
			nil, "CONFLICTCHECK_HEADER_X_API_KEY and CONFLICTCHECK_HEADER_x_api_key both set X-Api-Key: keep one"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := FromEnv(tt.environ)
			checkParsed(t, got, err, tt.want, tt.wantErr)
		})
	}
}

func TestMerge(t *testing.T) {
	t.Parallel()
	env := http.Header{"Authorization": {"env"}, "X-Env": {"e"}}
	file := http.Header{"Authorization": {"file"}, "X-File": {"f1", "f2"}}
	flags := http.Header{"Authorization": {"flag"}, "x-file": {"flag"}}
	got := Merge(env, file, flags)
	want := http.Header{"Authorization": {"flag"}, "X-Env": {"e"}, "X-File": {"flag"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Merge = %v; want %v", got, want)
	}
	got["X-Env"][0] = "changed"
	if env.Get("X-Env") != "e" {
		t.Errorf("changing the merge changed a layer: %v", env)
	}
	if got := Merge(); !reflect.DeepEqual(got, http.Header{}) {
		t.Errorf("Merge() = %v; want an empty header", got)
	}
}
