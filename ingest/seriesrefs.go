package ingest

import (
	"hash/maphash"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/augur-ops/augur/proto"
)

// seriesRefs is the series dictionary of one partition: the number the
// receiver gave each series it wrote there, and when a record defining it
// was last acknowledged. A row refers to a series by number only while that
// definition is younger than refreshAge; otherwise it defines it again
// (proto/block.go, "Series references"). Safe for concurrent use.
type seriesRefs struct {
	mu sync.Mutex
	// id names the dictionary in the blocks; a new one begins when max
	// series are numbered, so the memory stays bounded.
	id    uint64
	max   int
	index map[seriesHash]uint32 // tenant and series column → number
	// definedAt is, per number, when the request whose records define it
	// began to produce them (unix ms), 0 while no such record is
	// acknowledged. Index 0 is unused: numbers start at 1.
	definedAt []int64
}

// refreshAge is how old a definition may be for a row to refer to it: short
// of proto.SeriesRefMaxAge by the time a request may take to be produced
// after it was built, so that the reference's record stays within it.
const refreshAge = proto.SeriesRefMaxAge - 10*time.Second

func newSeriesRefs(max int) *seriesRefs {
	d := &seriesRefs{max: max}
	d.reset()
	return d
}

func (d *seriesRefs) reset() {
	d.id = rand.Uint64() | 1 // never 0, which means no dictionary
	d.index = map[seriesHash]uint32{}
	d.definedAt = append(d.definedAt[:0], 0)
}

// number returns the dictionary, the number of the series whose tenant and
// series column are key, and whether the row must define it (a new number, or none
// acknowledged within refreshAge of nowMs). xxh is xxhash64 of key, or of
// key after a fixed prefix (the routing key's, which the caller has hashed
// already): the same for every call with the same key.
func (d *seriesRefs) number(key []byte, xxh uint64, nowMs int64) (dict uint64, ref uint32, define bool) {
	h := seriesHash{xxh, maphash.Bytes(seriesSeed, key)}
	d.mu.Lock()
	defer d.mu.Unlock()
	ref, ok := d.index[h]
	if !ok {
		if len(d.index) >= d.max {
			d.reset()
		}
		ref = uint32(len(d.definedAt))
		d.index[h] = ref
		d.definedAt = append(d.definedAt, 0)
		return d.id, ref, true
	}
	return d.id, ref, !current(d.definedAt[ref], nowMs)
}

// keepCurrent keeps, of places[i] for each i of idx (places in this
// dictionary's partition), those whose number still names its series and
// was defined within refreshAge of nowMs: a row may refer to it without
// defining it. It zeroes the others.
func (d *seriesRefs) keepCurrent(places []knownSlot, idx []int32, nowMs int64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, i := range idx {
		pl := &places[i]
		if pl.dict != d.id {
			*pl = knownSlot{}
			continue
		}
		if !current(d.definedAt[pl.ref], nowMs) {
			*pl = knownSlot{}
		}
	}
}

// current reports whether a definition acknowledged at atMs (0: none) may
// still be referred to at nowMs.
func current(atMs, nowMs int64) bool {
	return atMs != 0 && nowMs-atMs < refreshAge.Milliseconds()
}

// defined records that a record defining number ref of dictionary dict,
// with timestamp atMs, was acknowledged.
func (d *seriesRefs) defined(dict uint64, ref uint32, atMs int64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if dict == d.id && d.definedAt[ref] < atMs {
		d.definedAt[ref] = atMs
	}
}

// seriesHash names a series key in a dictionary by two 64-bit hashes of
// different functions (xxhash64 and the runtime's, randomly seeded): a
// lookup reads 16 bytes instead of the key, a few hundred bytes a cache
// miss away. Two of a million series share both with probability about
// 10^-27 (n²/2^129).
type seriesHash [2]uint64

var seriesSeed = maphash.MakeSeed()
