package config

import (
	"errors"
	"fmt"
	"math"
	"math/big"
	"strings"
	"time"
	"unicode"
)

// Size is a byte count. In YAML it is written as a plain integer (bytes) or
// as a number with a binary (IEC) unit:
//
//	4096   4096B   512KiB   64MiB   1GiB   1.5GiB   2TiB
//	512Ki  64Mi    1Gi                              (Kubernetes spelling)
//
// Units are case-insensitive and 1024-based. Decimal units (KB, MB, GB, K,
// M, G) are rejected on purpose: "64MB" is read as 64*2^20 by some tools and
// 64*10^6 by others, and the cache's region arithmetic must not depend on a
// guess. The error message says which binary unit to use instead.
// Fractions are allowed if they come to a whole number of bytes.
type Size int64

// Binary size units.
const (
	B   Size = 1
	KiB Size = 1 << 10
	MiB Size = 1 << 20
	GiB Size = 1 << 30
	TiB Size = 1 << 40
)

var sizeUnits = map[string]Size{
	"": B, "b": B,
	"kib": KiB, "ki": KiB,
	"mib": MiB, "mi": MiB,
	"gib": GiB, "gi": GiB,
	"tib": TiB, "ti": TiB,
}

var decimalUnits = map[string]string{
	"k": "KiB", "kb": "KiB",
	"m": "MiB", "mb": "MiB",
	"g": "GiB", "gb": "GiB",
	"t": "TiB", "tb": "TiB",
}

// ParseSize parses a size as described on [Size].
func ParseSize(s string) (Size, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, errors.New("empty size")
	}
	// Split "1.5GiB" into number "1.5" and unit "GiB"; "64 MiB" is allowed too.
	i := strings.IndexFunc(s, func(r rune) bool { return !(unicode.IsDigit(r) || r == '.' || r == '_' || r == '-' || r == '+') })
	if i < 0 {
		i = len(s)
	}
	num := strings.ReplaceAll(s[:i], "_", "")
	unit := strings.TrimSpace(s[i:])
	mult, ok := sizeUnits[strings.ToLower(unit)]
	if !ok {
		if bin, dec := decimalUnits[strings.ToLower(unit)]; dec {
			return 0, fmt.Errorf("ambiguous unit %q in %q: use a binary unit such as %q (1024-based), or plain bytes", unit, s, bin)
		}
		return 0, fmt.Errorf("invalid size %q: expected bytes or a number with a unit B, KiB, MiB, GiB or TiB", s)
	}
	if num == "" {
		return 0, fmt.Errorf("invalid size %q: missing number", s)
	}
	if strings.HasPrefix(num, "-") {
		return 0, fmt.Errorf("invalid size %q: must not be negative", s)
	}
	r, ok := new(big.Rat).SetString(num)
	if !ok {
		return 0, fmt.Errorf("invalid size %q", s)
	}
	r.Mul(r, new(big.Rat).SetInt64(int64(mult)))
	if !r.IsInt() {
		return 0, fmt.Errorf("invalid size %q: not a whole number of bytes", s)
	}
	if !r.Num().IsInt64() {
		return 0, fmt.Errorf("invalid size %q: too large", s)
	}
	return Size(r.Num().Int64()), nil
}

// String formats s with the largest binary unit that divides it exactly,
// so that ParseSize(s.String()) == s.
func (s Size) String() string {
	if s == 0 {
		return "0"
	}
	for _, u := range []struct {
		n    Size
		name string
	}{{TiB, "TiB"}, {GiB, "GiB"}, {MiB, "MiB"}, {KiB, "KiB"}} {
		if s%u.n == 0 && s != math.MinInt64 {
			return fmt.Sprintf("%d%s", s/u.n, u.name)
		}
	}
	return fmt.Sprintf("%d", int64(s))
}

// MarshalYAML writes the human form, e.g. "64MiB".
func (s Size) MarshalYAML() (any, error) { return s.String(), nil }

// ParseDuration parses a duration in Go syntax ("250ms", "5s", "1h30m").
// A bare number is rejected unless it is 0, because "5" could mean
// seconds or milliseconds depending on who wrote it.
func ParseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "0" {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		if isNumber(s) {
			return 0, fmt.Errorf("invalid duration %q: add a unit, e.g. %q or %q", s, s+"s", s+"ms")
		}
		return 0, fmt.Errorf("invalid duration %q: expected a number with a unit (ns, us, ms, s, m, h), e.g. \"250ms\" or \"5s\"", s)
	}
	if d < 0 {
		return 0, fmt.Errorf("invalid duration %q: must not be negative", s)
	}
	return d, nil
}

func isNumber(s string) bool {
	_, ok := new(big.Rat).SetString(s)
	return ok
}
