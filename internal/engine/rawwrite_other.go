//go:build !unix

package engine

import "errors"

// rawWrite is unavailable here: the release falls back to the connection's Write.
func rawWrite(uintptr, []byte) (int, error) { return 0, errors.ErrUnsupported }
