//go:build !unix

package auth

import "os/exec"

// killGroup leaves cmd's default cancellation (kill the shell) where process groups are not
// available; WaitDelay still bounds the wait for its output.
func killGroup(*exec.Cmd) {}
