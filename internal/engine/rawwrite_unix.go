//go:build unix

package engine

import "syscall"

// rawWrite writes b to the socket fd with one write(2), bypassing the net poller.
func rawWrite(fd uintptr, b []byte) (int, error) { return syscall.Write(int(fd), b) }
