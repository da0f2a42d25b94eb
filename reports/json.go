package reports

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
)

// JSONFile is the name of the JSON report in a report dir.
const JSONFile = "report.json"

// WriteJSON writes run as indented JSON to dir/report.json.
func WriteJSON(dir string, run Run) error {
	return writeEncoded(dir, JSONFile, run, jsonBytes)
}

// jsonBytes is run as indented JSON ending in a newline.
func jsonBytes(run Run) ([]byte, error) {
	b, err := json.MarshalIndent(run, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// ReadJSON reads the run a report dir's report.json holds (selftest reads its children's).
func ReadJSON(dir string) (Run, error) {
	path := filepath.Join(dir, JSONFile)
	b, err := os.ReadFile(path)
	if err != nil {
		return Run{}, fmt.Errorf("read %s: %w", path, err)
	}
	var run Run
	if err := json.Unmarshal(b, &run); err != nil {
		return Run{}, fmt.Errorf("decode %s: %w", path, err)
	}
	return run, nil
}
