//go:build !unix

package appcounters

import "os"

func lock(*os.File) error            { return ErrUnsupported }
func tryLock(*os.File) (bool, error) { return false, ErrUnsupported }
