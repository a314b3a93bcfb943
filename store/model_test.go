package store

import (
	"fmt"
	"math/rand/v2"
	"sort"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/zerohop/zerohop/invalidate"
	"github.com/zerohop/zerohop/shm"
)

// TestModel drives the store and a map through the same random
// operations (puts, gets, every kind of invalidation, soft and hard,
// clock moves, close and reopen) and compares them after each read and
// each reopen.
func TestModel(t *testing.T) {
	ops := 3000
	if testing.Short() || raceEnabled {
		ops = 1200
	}
	for _, seed := range []uint64{1, 2, 3} {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) { runModel(t, seed, ops) })
	}
}

const modelIDs = 120

// modelKey is id's key; ids 100-119 are Vary variants of ids 0-19.
func modelKey(id int) []byte {
	if id >= 100 {
		return shm.AppendVary(genKey(id-100), []shm.VaryField{{Name: "accept", Present: true, Value: fmt.Sprint("v", id)}})
	}
	return genKey(id)
}

func modelID(key []byte) int {
	for id := 0; id < modelIDs; id++ {
		if string(modelKey(id)) == string(key) {
			return id
		}
	}
	return -1
}

func runModel(t *testing.T, seed uint64, nops int) {
	r := rand.New(rand.NewPCG(seed, 99))
	c := newClock()
	dir := t.TempDir()
	open := func() *Store {
		o := testOpts(t, c)
		o.SweepInterval = 5 * time.Millisecond
		s, err := Open(dir, o)
		if err != nil {
			t.Fatal(err)
		}
		s.testNoSync = true
		return s
	}
	s := open()
	defer func() { s.Close() }()
	model := map[int]*shm.Item{}
	ver := uint64(0)
	live := func(it *shm.Item) bool {
		return deadline(it.StoredMs, it.ExpiresMs, it.SWR, it.SIE, it.Flags, it.ETag != "" || it.LastModified != "", 0) > c.Ms()
	}
	purge := func(match func(id int, it *shm.Item) bool, soft bool) {
		for id, it := range model {
			if !match(id, it) {
				continue
			}
			if !soft {
				delete(model, id)
				continue
			}
			if it.ExpiresMs > c.Ms() {
				cp := *it
				cp.ExpiresMs = c.Ms()
				model[id] = &cp
			}
			if !live(model[id]) {
				delete(model, id)
			}
		}
	}
	compare := func(step int, what string) {
		t.Helper()
		flush(t, s)
		for id := 0; id < modelIDs; id++ {
			want, inModel := model[id]
			if inModel && !live(want) {
				inModel = false
			}
			got, ok := s.Get(modelKey(id), c.Ms())
			if ok != inModel {
				t.Fatalf("step %d (%s): id %d: store has=%v, model has=%v", step, what, id, ok, inModel)
			}
			if ok {
				w := *want
				w.Key = modelKey(id)
				if err := sameItem(got, &w, false); err != nil {
					t.Fatalf("step %d (%s): id %d: %v", step, what, id, err)
				}
			}
		}
		// Nothing else is in the store but expired leftovers.
		it, _ := s.db.NewIter(nil)
		defer it.Close()
		for ok := it.SeekGE([]byte{pRec}); ok && it.Key()[0] == pRec; ok = it.Next() {
			id := modelID(it.Key()[1:])
			if id < 0 {
				t.Fatalf("step %d: unknown key %q in the store", step, it.Key()[1:])
			}
		}
		// The persisted counter matches the records, in one snapshot (the
		// sweeper may be committing meanwhile).
		snap := s.db.NewSnapshot()
		defer snap.Close()
		var entries int64
		if v, closer, err := snap.Get(keyCounters); err == nil {
			entries = int64(le.Uint64(v))
			closer.Close()
		}
		sit, _ := snap.NewIter(&pebble.IterOptions{LowerBound: []byte{pRec}, UpperBound: []byte{pRec + 1}})
		records := 0
		for ok := sit.First(); ok; ok = sit.Next() {
			records++
		}
		sit.Close()
		if entries != int64(records) {
			t.Fatalf("step %d: persisted Entries counter %d, records %d", step, entries, records)
		}
	}
	var log []string
	defer func() {
		if t.Failed() {
			n := len(log)
			t.Logf("last operations:\n%s", fmt.Sprint(log[max(0, n-30):n]))
		}
	}()
	for step := 0; step < nops; step++ {
		p := r.IntN(100)
		var what string
		soft := r.IntN(3) == 0
		switch {
		case p < 35:
			id := r.IntN(modelIDs)
			ver++
			ttl := []time.Duration{time.Second, 10 * time.Second, time.Hour}[r.IntN(3)]
			it := genItem(id%100, ver, c.Ms(), ttl, 0, 600)
			it.Key = modelKey(id)
			if id >= 100 {
				it.Vary = []string{"accept"}
				it.Tags = append(it.Tags, shm.VariantTag(genKey(id-100)))
			}
			s.Put(it)
			cp := *it
			if live(&cp) {
				model[id] = &cp
			} else {
				delete(model, id)
			}
			what = fmt.Sprintf("put %d v%d ttl %v", id, ver, ttl)
		case p < 55:
			what = "compare"
			compare(step, what)
		case p < 63:
			id := r.IntN(100)
			s.Purge(keyPurge(genKey(id), soft))
			purge(func(i int, _ *shm.Item) bool { return i == id || (id < 20 && i == id+100) }, soft)
			what = fmt.Sprintf("delete url %d soft=%v", id, soft)
		case p < 70:
			g := r.IntN(groups)
			s.Purge(invalidate.TagPurge(groupTag(g), mode(soft)))
			purge(func(i int, _ *shm.Item) bool { return (i%100)%groups == g }, soft)
			what = fmt.Sprintf("purge tag %d soft=%v", g, soft)
		case p < 73:
			s.Purge(invalidate.TagPurge("five", mode(soft)))
			purge(func(i int, _ *shm.Item) bool { return (i%100)%5 == 0 }, soft)
			what = fmt.Sprintf("purge tag five soft=%v", soft)
		case p < 80:
			h, pre := r.IntN(4), r.IntN(8)
			s.Purge(invalidate.PrefixPurge("http", genHost(h), fmt.Sprint("/p", pre), mode(soft)))
			purge(func(i int, _ *shm.Item) bool { j := i % 100; return j%4 == h && j%8 == pre }, soft)
			what = fmt.Sprintf("prefix h%d /p%d soft=%v", h, pre, soft)
		case p < 81:
			if soft {
				s.Purge(invalidate.AllPurge(invalidate.Soft))
			} else {
				s.Purge(invalidate.AllPurge(invalidate.Hard))
			}
			purge(func(int, *shm.Item) bool { return true }, soft)
			what = fmt.Sprintf("purge all soft=%v", soft)
		case p < 84:
			id := r.IntN(modelIDs)
			s.invalidate(exactInval(modelKey(id), soft), nil)
			purge(func(i int, _ *shm.Item) bool { return i == id }, soft)
			what = fmt.Sprintf("delete key %d soft=%v", id, soft)
		case p < 95:
			d := time.Duration(r.IntN(4000)) * time.Millisecond
			c.Add(d)
			what = fmt.Sprintf("clock +%v", d)
		default:
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			s = open()
			what = "reopen"
			compare(step, what)
		}
		log = append(log, what)
	}
	compare(nops, "final")
	ids := make([]int, 0, len(model))
	for id := range model {
		ids = append(ids, id)
	}
	sort.Ints(ids)
	t.Logf("final: %d entries in the model, store stats %+v", len(ids), s.Stats())
}
