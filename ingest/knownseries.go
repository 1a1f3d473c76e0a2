package ingest

import (
	"hash/maphash"
	"slices"
	"sync"
)

// knownSeries remembers where the receiver put each series it numbered: the
// partition and the number its dictionary gave it, keyed by the series'
// wire identity (wireID: the tenant, the protocol and the label bytes as
// they arrived). A later row that arrives as the same bytes is the same
// series, already validated and routed, so the receiver skips checking its
// labels, building its routing key and looking it up by that key: the row
// refers to the number as it is. Rows that must define their series (a new
// number, or a definition older than refreshAge) still take the full path.
//
// It is sharded by hash so that concurrent requests rarely share a lock,
// and each shard is an open-addressed table of 32-byte slots: a lookup reads
// one slot, usually one cache line. It holds at most max series; a shard
// that fills is emptied and refilled by the full path.
type knownSeries struct {
	shards [knownShards]knownShard
}

// knownShards shards by the top bits of a series' second hash.
const (
	knownShardBits = 4
	knownShards    = 1 << knownShardBits
)

type knownShard struct {
	mu    sync.Mutex
	slots []knownSlot // length a power of two; an empty slot has ref 0
	n     int
	max   int
}

// knownSlot is a series' place: number ref of dictionary dict, partition
// part.
type knownSlot struct {
	id   seriesHash
	dict uint64
	part int32
	ref  uint32
}

func newKnownSeries(max int) *knownSeries {
	k := &knownSeries{}
	for i := range k.shards {
		k.shards[i].max = max/knownShards + 1
	}
	return k
}

// getAll looks up each series of ids and sets places[i] to where ids[i]
// was put, or to zero (ref 0) when unknown. It takes each
// shard's lock once: under a lock the lookups' cache misses overlap, where
// a lock per lookup (a fence) would wait for each in turn. order is
// scratch space; getAll returns it grown.
func (k *knownSeries) getAll(ids []seriesHash, places []knownSlot, order []int32) []int32 {
	var starts [knownShards + 1]int32
	order = groupBy(order, starts[:], len(ids), func(i int) int { return int(ids[i][1] >> (64 - knownShardBits)) })
	for sh := range k.shards {
		from, to := starts[sh], starts[sh+1]
		if from == to {
			continue
		}
		s := &k.shards[sh]
		s.mu.Lock()
		for _, i := range order[from:to] {
			places[i] = s.lookup(ids[i])
		}
		s.mu.Unlock()
	}
	return order
}

// lookup returns the slot of id, zero when there is none.
func (s *knownShard) lookup(id seriesHash) knownSlot {
	if len(s.slots) == 0 {
		return knownSlot{}
	}
	mask := uint64(len(s.slots) - 1)
	for i := id[0] & mask; ; i = (i + 1) & mask {
		sl := &s.slots[i]
		if sl.id == id {
			return *sl
		}
		if sl.ref == 0 {
			return knownSlot{}
		}
	}
}

// groupBy orders the indexes 0..n-1 by key (0 to len(starts)-2), stably:
// the indexes of key k are order[starts[k]:starts[k+1]].
func groupBy(order []int32, starts []int32, n int, key func(i int) int) []int32 {
	clear(starts)
	for i := range n {
		starts[key(i)+1]++
	}
	for k := 1; k < len(starts); k++ {
		starts[k] += starts[k-1]
	}
	order = slices.Grow(order[:0], n)[:n]
	for i := range n { // starts[k] is key k's next place
		k := key(i)
		order[starts[k]] = int32(i)
		starts[k]++
	}
	copy(starts[1:], starts) // each is now its key's end: shift back
	starts[0] = 0
	return order
}

// put records that series id is number ref of dictionary dict, in
// partition part.
func (k *knownSeries) put(id seriesHash, part int32, dict uint64, ref uint32) {
	s := &k.shards[id[1]>>(64-knownShardBits)]
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.n >= s.max {
		clear(s.slots)
		s.n = 0
	}
	if (s.n+1)*4 > len(s.slots)*3 { // at most three quarters full
		s.grow()
	}
	if s.insert(knownSlot{id, dict, part, ref}) {
		s.n++
	}
}

// insert writes sl in its slot and reports whether the slot was empty.
func (s *knownShard) insert(sl knownSlot) bool {
	mask := uint64(len(s.slots) - 1)
	for i := sl.id[0] & mask; ; i = (i + 1) & mask {
		cur := &s.slots[i]
		if cur.id == sl.id || cur.ref == 0 {
			empty := cur.ref == 0
			*cur = sl
			return empty
		}
	}
}

func (s *knownShard) grow() {
	old := s.slots
	s.slots = make([]knownSlot, max(64, 2*len(old)))
	for _, sl := range old {
		if sl.ref != 0 {
			s.insert(sl)
		}
	}
}

// wireID hashes a series' wire identity: wire, the bytes that name its
// labels, and tenant, the request's tenant and protocol (tenantID). The
// two halves are independent 64-bit hashes.
func wireID(tenant seriesHash, wire []byte) seriesHash {
	return seriesHash{
		maphash.Bytes(knownSeedA, wire) ^ tenant[0],
		maphash.Bytes(knownSeedB, wire) ^ tenant[1],
	}
}

// tenantID hashes a request's tenant and protocol version for wireID.
func tenantID(tenant string, version int) seriesHash {
	v := string(rune('0' + version))
	return seriesHash{
		maphash.String(knownSeedA, v+tenant),
		maphash.String(knownSeedB, v+tenant),
	}
}

var knownSeedA, knownSeedB = maphash.MakeSeed(), maphash.MakeSeed()
