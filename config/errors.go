package config

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
)

// FieldError is one problem in a configuration, located as precisely as
// the input allows. Its Error text has the compiler-like form
//
//	zerohop.yaml:12: routes[1].cluster: unknown cluster "api2"
//
// which terminals and editors turn into a link. Parts that are unknown are
// left out: no line for problems in built-in defaults, and the prefix
// "config" instead of a file name for configs built in Go code.
type FieldError struct {
	File   string // file name as given to Load or Parse; "" for configs built in code
	Line   int    // 1-based; 0 if the value did not come from the file
	Column int    // 1-based; 0 if unknown
	Field  string // path such as "routes[1].match.path_prefix"; "" for the whole document
	Msg    string
}

func (e *FieldError) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
	} else {
		b.WriteString("config")
	}
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	b.WriteString(": ")
	if e.Field != "" {
		b.WriteString(e.Field)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// ErrorList is every problem found in one configuration, in file order.
// Parse, Load and Validate return it (as an error) so that a user fixes
// everything in one round instead of one error per run. Use errors.As to
// get at the list, or at the first *FieldError.
type ErrorList []*FieldError

// Error lists all problems, one per line.
func (l ErrorList) Error() string {
	lines := make([]string, len(l))
	for i, e := range l {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap exposes the individual errors to errors.Is and errors.As.
func (l ErrorList) Unwrap() []error {
	errs := make([]error, len(l))
	for i, e := range l {
		errs[i] = e
	}
	return errs
}

// err returns l sorted by position as an error, or nil if l is empty; it
// avoids the classic non-nil interface holding a nil slice.
func (l ErrorList) err() error {
	if len(l) == 0 {
		return nil
	}
	slices.SortStableFunc(l, func(a, b *FieldError) int {
		return cmp.Or(cmp.Compare(a.Line, b.Line), cmp.Compare(a.Column, b.Column))
	})
	return l
}
