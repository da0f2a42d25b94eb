package server_test

import (
	"strings"
	"testing"

	"github.com/spf13/pflag"

	"github.com/conflictcheck/conflictcheck/reference-server/server"
)

// TestHelpNeverShowsTheDatabaseURL keeps a password in $DATABASE_URL out of --help.
func TestHelpNeverShowsTheDatabaseURL(t *testing.T) {
	t.Setenv("DATABASE_URL", "postgres://app:s3cret@127.0.0.1/db")
	var cfg server.Config
	fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
	cfg.BindFlags(fs)
	if usage := fs.FlagUsages(); strings.Contains(usage, "s3cret") {
		t.Fatalf("--help shows the database URL:\n%s", usage)
	}
	if _, err := (server.Config{Store: "postgres"}).Validate(); err != nil {
		t.Fatalf("Validate with $DATABASE_URL set: %v; want the variable used", err)
	}
}
