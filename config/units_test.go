package config

import (
	"strings"
	"testing"
	"time"
)

func TestParseSize(t *testing.T) {
	tests := []struct {
		in      string
		want    Size
		wantErr string
	}{
		{"0", 0, ""},
		{"4096", 4096, ""},
		{"4096B", 4096, ""},
		{"512KiB", 512 * KiB, ""},
		{"64MiB", 64 * MiB, ""},
		{"64 MiB", 64 * MiB, ""},
		{"64mib", 64 * MiB, ""},
		{"64Mi", 64 * MiB, ""},
		{"1GiB", GiB, ""},
		{"1Gi", GiB, ""},
		{"2TiB", 2 * TiB, ""},
		{"1.5GiB", 1536 * MiB, ""},
		{"0.5KiB", 512, ""},
		{"1_000", 1000, ""},
		{"010", 10, ""},
		{"64MB", 0, `ambiguous unit "MB" in "64MB": use a binary unit such as "MiB"`},
		{"1G", 0, `ambiguous unit "G"`},
		{"1kb", 0, `ambiguous unit "kb"`},
		{"0.3B", 0, "not a whole number of bytes"},
		{"-1", 0, "must not be negative"},
		{"-1KiB", 0, "must not be negative"},
		{"", 0, "empty size"},
		{"MiB", 0, "missing number"},
		{"12XB", 0, `invalid size "12XB": expected bytes or a number with a unit`},
		{"1e3", 0, "invalid size"},
		{"1/2", 0, "invalid size"},
		{"1..2KiB", 0, "invalid size"},
		{"8388608TiB", 0, "too large"},
		{"9223372036854775807", 1<<63 - 1, ""},
		{"9223372036854775808", 0, "too large"},
	}
	for _, tt := range tests {
		got, err := ParseSize(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseSize(%q) = %v, %v; want error containing %q", tt.in, got, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", tt.in, got, err, tt.want)
		}
	}
}

func TestSizeStringRoundTrips(t *testing.T) {
	for _, s := range []Size{0, 1, 1000, KiB, 1536 * MiB, 64 * MiB, 3 * GiB, 5 * TiB, 1<<63 - 1, MiB + 1} {
		got, err := ParseSize(s.String())
		if err != nil || got != s {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", s.String(), got, err, s)
		}
	}
	if got := (64 * MiB).String(); got != "64MiB" {
		t.Errorf("String() = %q, want 64MiB", got)
	}
}

func TestParseDuration(t *testing.T) {
	tests := []struct {
		in      string
		want    time.Duration
		wantErr string
	}{
		{"0", 0, ""},
		{"0s", 0, ""},
		{"250ms", 250 * time.Millisecond, ""},
		{"5s", 5 * time.Second, ""},
		{"1h30m", 90 * time.Minute, ""},
		{"24h", 24 * time.Hour, ""},
		{"1.5s", 1500 * time.Millisecond, ""},
		{"5", 0, `invalid duration "5": add a unit, e.g. "5s" or "5ms"`},
		{"-1s", 0, "must not be negative"},
		{"1d", 0, `expected a number with a unit`},
		{"fast", 0, `invalid duration "fast"`},
		{"", 0, "invalid duration"},
	}
	for _, tt := range tests {
		got, err := ParseDuration(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseDuration(%q) = %v, %v; want error containing %q", tt.in, got, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
}
