package reports

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestWriteReadJSON(t *testing.T) {
	dir := t.TempDir()
	want := FromOutcomes(testMeta, outcomes())
	if err := WriteJSON(dir, want); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, JSONFile))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(b), "{\n  \"meta\": {") || !strings.HasSuffix(string(b), "}\n") {
		t.Errorf("%s is not indented JSON ending in a newline:\n%.200s", JSONFile, b)
	}
	var generic map[string]any
	if err := json.Unmarshal(b, &generic); err != nil {
		t.Fatalf("%s is not JSON: %v", JSONFile, err)
	}
	// An exchange is flat and readable: phase, request, response and times side by side, the
	// bodies as text.
	ex := generic["scenarios"].([]any)[0].(map[string]any)["exchanges"].([]any)[0].(map[string]any)
	if ex["phase"] != "probe-setup" || ex["status"] != float64(201) || ex["url"] != "/probe-setup/1" ||
		ex["request_body"] != `{"sku":"a"}` || ex["body"] != `{"status":409}` || ex["done_us"] != float64(4000) {
		t.Errorf("first exchange %v; want phase, request, text bodies and times side by side", ex)
	}

	got, err := ReadJSON(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ReadJSON(WriteJSON(run)) differs:\n got %+v\nwant %+v", got, want)
	}
}

func TestReadJSONErrors(t *testing.T) {
	tests := []struct {
		name    string
		content string // "" leaves the file absent
		want    string
	}{
		{"missing", "", "read "},
		{"corrupt", `{"summary": {"scenarios": "eight"}}`, "decode "},
		{"truncated", `{"summary": {`, "decode "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, JSONFile)
			if tt.content != "" {
				if err := os.WriteFile(path, []byte(tt.content), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			run, err := ReadJSON(dir)
			if err == nil {
				t.Fatalf("ReadJSON: no error, run %+v", run)
			}
			if !strings.Contains(err.Error(), tt.want+path) {
				t.Errorf("error %q; want it to say %q and name %s", err, tt.want, path)
			}
		})
	}
}

func TestWriteJSONError(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "absent")
	err := WriteJSON(dir, Run{})
	if err == nil {
		t.Fatal("WriteJSON into a missing folder: no error")
	}
	if want := filepath.Join(dir, JSONFile); !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not name %s", err, want)
	}
}
