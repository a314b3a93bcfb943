//go:build !linux

package proxy

import "errors"

// peekFD: transparent listeners run on Linux only (the sidecar refuses
// to start one elsewhere).
func peekFD(uintptr, []byte) (int, bool, error) {
	return 0, false, errors.New("proxy: transparent interception needs Linux")
}
