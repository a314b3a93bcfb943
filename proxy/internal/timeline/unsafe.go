package timeline

import "unsafe"

// unsafeString views b as a string for the length of a call.
func unsafeString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}
