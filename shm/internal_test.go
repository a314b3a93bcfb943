package shm

import (
	"fmt"
	"hash/crc32"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/cespare/xxhash/v2"
)

// TestXXH64MatchesDigest checks the one-pass XXH64 of the key hash against
// cespare/xxhash's seeded Digest at every length up to a few stripes and at
// some longer ones, with edge and random seeds.
func TestXXH64MatchesDigest(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	buf := make([]byte, 4096)
	for i := range buf {
		buf[i] = byte(rng.Uint32())
	}
	seeds := []uint64{0, 1, 0xc0ffee0123456789, math.MaxUint64, xxPrime1, math.MaxUint64 - xxPrime1 + 1}
	for i := 0; i < 8; i++ {
		seeds = append(seeds, rng.Uint64())
	}
	lens := []int{}
	for n := 0; n <= 200; n++ {
		lens = append(lens, n)
	}
	lens = append(lens, 255, 256, 257, 1000, 1303, 1304, 4095, 4096)
	for _, seed := range seeds {
		for _, n := range lens {
			for _, off := range []int{0, 3} { // unaligned input too
				if off+n > len(buf) {
					continue
				}
				b := buf[off : off+n]
				var d xxhash.Digest
				d.ResetWithSeed(seed)
				d.Write(b)
				if got, want := xxh64(b, seed), d.Sum64(); got != want {
					t.Fatalf("xxh64(len %d, seed %#x) = %#x; Digest gives %#x", n, seed, got, want)
				}
			}
		}
	}
	if got, want := xxh64([]byte("abc"), 0), xxhash.Sum64String("abc"); got != want {
		t.Fatalf("xxh64(abc, 0) = %#x; want %#x", got, want)
	}
}

// TestDivisor checks the reciprocal remainder against % for the divisors a
// file can have (multiples of 4 KiB, region_count ≥ 4 times those) at edge
// and random positions.
func TestDivisor(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	ds := []uint64{1, 2, 3, 7, 4096, 8192, 12288, 64 << 10, 4 << 20, 1 << 30, 3 << 30,
		4 * 4096, 5 * 4096, 255 * (4 << 20), 1<<32 - 4096, (1<<32 - 4096) * (1<<32 - 1),
		1 << 63, 1<<63 + 1, math.MaxUint64}
	for i := 0; i < 200; i++ {
		ds = append(ds, 4096*(1+rng.Uint64N(1<<20))*(4+rng.Uint64N(1<<12)))
	}
	for _, d := range ds {
		v := newDivisor(d)
		xs := []uint64{0, 1, d - 1, d, d + 1, 2*d - 1, 2 * d, math.MaxUint64, math.MaxUint64 - 1,
			math.MaxUint64 / d * d, math.MaxUint64/d*d - 1, 1 << 63}
		for i := 0; i < 2000; i++ {
			xs = append(xs, rng.Uint64(), rng.Uint64N(1<<40), rng.Uint64N(d)*d+rng.Uint64N(d))
		}
		for _, x := range xs {
			if got, want := v.mod(x), x%d; got != want {
				t.Fatalf("%d mod %d = %d; want %d", x, d, got, want)
			}
		}
	}
}

// TestEntrySum checks the entry checksum against hash/crc32 (and so zlib's
// crc32) at every length up to a few blocks and some longer ones, from
// several initial values, and its check value.
func TestEntrySum(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	buf := make([]byte, 4200)
	for i := range buf {
		buf[i] = byte(rng.Uint32())
	}
	lens := []int{}
	for n := 0; n <= 300; n++ {
		lens = append(lens, n)
	}
	lens = append(lens, 1384, 1392, 4095, 4096, 4104)
	for _, seed := range []uint64{0, 0xc0ffee0123456789, math.MaxUint64, rng.Uint64(), rng.Uint64()} {
		for _, n := range lens {
			for _, off := range []int{0, 5} {
				b := buf[off : off+n]
				if got, want := entrySum(b, seed), crc32.Update(uint32(seed), crc32.IEEETable, b); got != want {
					t.Fatalf("entrySum(len %d, seed %#x) = %#x; hash/crc32 gives %#x", n, seed, got, want)
				}
			}
		}
	}
	if got := entrySum([]byte("123456789"), 0); got != 0xcbf43926 {
		t.Fatalf("check value %#x; want 0xcbf43926", got)
	}
}

// BenchmarkEntrySum compares entrySum with a plain crc32.Update at entry
// lengths whose checksummed part is 0 and 8 mod 16 (1 KiB-body entries).
func BenchmarkEntrySum(b *testing.B) {
	data := make([]byte, 4096)
	for i := range data {
		data[i] = byte(i * 7)
	}
	var sink uint32
	for _, n := range []int{1392 - 16, 1400 - 16} {
		b.Run(fmt.Sprintf("entrySum/%d", n), func(b *testing.B) {
			b.SetBytes(int64(n))
			for i := 0; i < b.N; i++ {
				sink += entrySum(data[:n], 0xc0ffee0123456789)
			}
		})
		b.Run(fmt.Sprintf("crc32.Update/%d", n), func(b *testing.B) {
			b.SetBytes(int64(n))
			for i := 0; i < b.N; i++ {
				sink += crc32.Update(0x23456789, crc32.IEEETable, data[:n])
			}
		})
	}
	if sink == 42 {
		b.Log(sink)
	}
}
