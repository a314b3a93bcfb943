package apikey

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestParseAndCheck(t *testing.T) {
	file := strings.Join([]string{
		"# comment", "",
		Line("svc-a", "salt1", "key-a-0123456789abcdef0123456789"),
		Line("svc-b", "salt1", "key-b-0123456789abcdef0123456789"),
		"  " + Line("svc-c", "other", "key-c-0123456789abcdef0123456789") + "  ",
	}, "\n")
	s, err := Parse([]byte(file))
	if err != nil {
		t.Fatal(err)
	}
	if s.Len() != 3 {
		t.Fatalf("Len %d; want 3", s.Len())
	}
	for key, want := range map[string]string{
		"key-a-0123456789abcdef0123456789": "svc-a",
		"key-b-0123456789abcdef0123456789": "svc-b",
		"key-c-0123456789abcdef0123456789": "svc-c",
		"key-d-0123456789abcdef0123456789": "",
		"":                                 "",
		strings.Repeat("k", 2000):          "",
	} {
		got, ok := s.Check(key)
		if got != want || ok != (want != "") {
			t.Errorf("Check(%.12q) = %q, %v; want %q", key, got, ok, want)
		}
	}
}

func TestBadFiles(t *testing.T) {
	good := Line("a", "s", "k")
	for _, f := range []string{
		"a:b",
		"a:s:zz",
		"a:s:" + strings.Repeat("0", 63),
		"a:s:" + strings.Repeat("0", 66), // longer than a hash: once a panic (FuzzParse)
		":s:" + strings.Repeat("0", 64),
		"a:s:" + strings.Repeat("0", 64) + ":extra",
		good + "\n" + strings.Replace(good, "a:", "b:", 1), // one key, two consumers
		"a:" + strings.Repeat("s", 200) + ":" + strings.Repeat("0", 64),
	} {
		_, err := Parse([]byte(good + "\n" + f))
		if !errors.Is(err, ErrFile) || !strings.Contains(err.Error(), "line 2") {
			t.Errorf("%.40q: %v; want ErrFile at line 2", f, err)
		}
		if err != nil && strings.Contains(err.Error(), strings.Split(good, ":")[2]) {
			t.Errorf("the error repeats a hash: %v", err)
		}
	}
}

// BenchmarkCheck: one key among 1000, one salt (the norm) and with the
// keys spread over 4 salts.
func BenchmarkCheck(b *testing.B) {
	for _, salts := range []int{1, 4} {
		b.Run(fmt.Sprintf("salts=%d", salts), func(b *testing.B) {
			var lines []string
			for i := range 1000 {
				lines = append(lines, Line(fmt.Sprintf("c%d", i), fmt.Sprintf("salt%d", i%salts), fmt.Sprintf("key-%04d-0123456789abcdef012345", i)))
			}
			s, err := Parse([]byte(strings.Join(lines, "\n")))
			if err != nil {
				b.Fatal(err)
			}
			key := "key-0999-0123456789abcdef012345"
			b.ReportAllocs()
			for b.Loop() {
				if _, ok := s.Check(key); !ok {
					b.Fatal("not found")
				}
			}
		})
	}
}

// FuzzParse: a garbage key file is an error, never a panic, and a key
// never matches a file that does not hold its hash.
func FuzzParse(f *testing.F) {
	f.Add(Line("a", "s", "k") + "\n# c\n\n" + Line("b", "t", "k2"))
	f.Add("a:b:c")
	f.Add(":::")
	f.Fuzz(func(t *testing.T, s string) {
		set, err := Parse([]byte(s))
		if err != nil {
			return
		}
		if c, ok := set.Check("key-not-in-any-seed-0123456789"); ok {
			t.Fatalf("an arbitrary key matched %q", c)
		}
	})
}
