//go:build !unix

package engine

import "errors"

// lbRawWrite is unavailable here: the release falls back to the connection's Write.
func lbRawWrite(uintptr, []byte) (int, error) { return 0, errors.ErrUnsupported }
