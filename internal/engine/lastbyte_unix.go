//go:build unix

package engine

import "syscall"

// lbRawWrite writes b to the socket fd with one write(2), bypassing the net poller.
func lbRawWrite(fd uintptr, b []byte) (int, error) { return syscall.Write(int(fd), b) }
