package auth

import (
	"context"
	"net/http"
	"reflect"
	"testing"
)

func TestSourceHeader(t *testing.T) {
	t.Parallel()
	static := http.Header{"Authorization": {"static"}, "X-Tenant": {"t1"}, "x-lower": {"l"}}
	tests := []struct {
		name      string
		src       *Source
		want      http.Header
		wantNames []string
	}{
		{"nil source", nil, http.Header{}, nil},
		{"empty", &Source{}, http.Header{}, []string{}},
		{"static only", &Source{Static: static},
			http.Header{"Authorization": {"static"}, "X-Tenant": {"t1"}, "X-Lower": {"l"}},
			[]string{"Authorization", "X-Lower", "X-Tenant"}},
		{"the command wins on a clash", &Source{Static: static, Command: NewCommand("echo 'Bearer cmd'", 0)},
			http.Header{"Authorization": {"Bearer cmd"}, "X-Tenant": {"t1"}, "X-Lower": {"l"}},
			[]string{"Authorization", "X-Lower", "X-Tenant"}},
		{"a named command header", &Source{Static: http.Header{"X-Tenant": {"t1"}}, Command: NewCommand("echo 'X-Session: s1'", 0)},
			http.Header{"X-Session": {"s1"}, "X-Tenant": {"t1"}},
			[]string{"X-Session", "X-Tenant"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.src.Header(context.Background())
			if err != nil {
				t.Fatalf("Header: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Header = %v; want %v", got, tt.want)
			}
			// The caller may modify what it got.
			for k := range got {
				got[k][0] = "changed"
				got.Set(k, "changed")
			}
			got.Set("X-New", "n")
			again, _ := tt.src.Header(context.Background())
			if !reflect.DeepEqual(again, tt.want) {
				t.Errorf("Header after the caller changed the last one = %v; want %v", again, tt.want)
			}
			if names := tt.src.Names(); !reflect.DeepEqual(names, tt.wantNames) {
				t.Errorf("Names = %#v; want %#v", names, tt.wantNames)
			}
			if err := tt.src.Refresh(context.Background(), got); err != nil {
				t.Errorf("Refresh: %v", err)
			}
		})
	}
}

// TestSourceNamesBeforeTheCommandRan: until the command printed its header, its name is
// taken to be Authorization.
func TestSourceNamesBeforeTheCommandRan(t *testing.T) {
	t.Parallel()
	s := &Source{Static: http.Header{"X-Tenant": {"t"}}, Command: NewCommand("echo 'X-Session: s1'", 0)}
	if got, want := s.Names(), []string{"Authorization", "X-Tenant"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Names before Header = %v; want %v", got, want)
	}
	if _, err := s.Header(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got, want := s.Names(), []string{"X-Session", "X-Tenant"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Names after Header = %v; want %v", got, want)
	}
}

func TestSourceRefresh(t *testing.T) {
	t.Parallel()
	s := &Source{Static: http.Header{"X-Tenant": {"t"}}, Command: NewCommand(counter(t, ""), 0)}
	ctx := context.Background()
	used, err := s.Header(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if err := s.Refresh(ctx, used); err != nil {
			t.Fatal(err)
		}
	}
	wantRuns(t, s.Command, 2)
	got, err := s.Header(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := (http.Header{"Authorization": {"Bearer token-2"}, "X-Tenant": {"t"}}); !reflect.DeepEqual(got, want) {
		t.Errorf("Header after Refresh = %v; want %v", got, want)
	}
}

func TestSourceCommandError(t *testing.T) {
	t.Parallel()
	s := &Source{Static: http.Header{"X-Tenant": {"t"}}, Command: NewCommand("exit 4", 0)}
	h, err := s.Header(context.Background())
	if want := "--auth-command: exit status 4"; err == nil || err.Error() != want || h != nil {
		t.Errorf("Header = %v, %v; want nil, %q", h, err, want)
	}
}
