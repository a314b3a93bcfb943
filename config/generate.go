package config

// The configuration reference is generated from this package's doc
// comments and defaults; a test in internal/configdoc fails when it is
// out of date.
//go:generate go run ../internal/configdoc/cmd/configdoc -src . -o ../docs/config.md
