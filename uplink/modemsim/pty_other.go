//go:build !linux

package modemsim

import "os"

func openPTY() (master, slave *os.File, path string, err error) {
	return nil, nil, "", ErrPTYUnsupported
}
