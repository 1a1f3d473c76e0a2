package stream

import (
	"strings"
	"unsafe"

	"github.com/augur-ops/augur/proto"
)

// refTable is what a shard knows of one series dictionary of a receiver
// (proto/block.go, "Series references"): per number, the series key and the
// row it had when last resolved.
type refTable struct {
	rows []refRow // by number
	used int64    // max event time after the last block that used it
}

type refRow struct {
	key string // series key (tenant included), "" when not defined
	row int32  // row of key when last resolved; checked before use
	typ string // the definition's metric type, "" when none
}

// refTableIdle is how long, in event time, a dictionary no block uses is
// kept: a receiver that restarted or began a new dictionary never writes
// the old one again.
const refTableIdle = int64(3600_000)

// refs returns the table of dictionary dict, nil for 0 (a block without
// numbers).
func (sh *shard) refs(dict uint64) *refTable {
	if dict == 0 {
		return nil
	}
	t := sh.refTables[dict]
	if t == nil {
		t = &refTable{}
		sh.refTables[dict] = t
	}
	return t
}

// define records that number ref of t is the series in row, of metric
// type typ (which may point into a block: copied when it changes).
func (t *refTable) define(ref uint32, key string, row int32, typ string) {
	if int(ref) >= len(t.rows) {
		t.rows = append(t.rows, make([]refRow, int(ref)+1-len(t.rows))...)
	}
	e := &t.rows[ref]
	e.key, e.row = key, row
	if e.typ != typ {
		e.typ = strings.Clone(typ)
	}
}

// resolve returns the row of number ref of t. A series swept since is
// created again from its key; a number never defined is not resolved.
func (sh *shard) resolve(t *refTable, ref uint32) (int32, bool) {
	if t == nil || int(ref) >= len(t.rows) || t.rows[ref].key == "" {
		return 0, false
	}
	e := &t.rows[ref]
	// A row is the same series while its key is the very string the
	// table holds: rows move when others are swept.
	if e.row >= 0 && int(e.row) < len(sh.keys) && sameString(sh.keys[e.row], e.key) {
		return e.row, true
	}
	row, ok := sh.index[e.key]
	if !ok {
		tenant, lbls, ok := proto.ParseSeriesKey(e.key, sh.lbls[:0])
		if !ok {
			return 0, false
		}
		sh.lbls = lbls
		row = sh.create(e.key, tenant, lbls, e.typ)
	}
	e.key, e.row = sh.keys[row], row
	return row, true
}

// learnRefs reads the definitions of a block without applying its samples
// (a restore reads the records before its committed offset so).
func (sh *shard) learnRefs(r *proto.BlockReader) {
	t := sh.refs(r.Dict())
	if t == nil {
		return
	}
	tenant := r.Tenant()
	for i := range r.Len() {
		ref := r.Ref(i)
		if ref == 0 || r.IsReference(i) {
			continue
		}
		sh.kbuf = r.AppendSeries(append(sh.kbuf[:0], tenant...), i)
		if row, ok := sh.index[string(sh.kbuf)]; ok {
			t.define(ref, sh.keys[row], row, r.Metadata(i).Type)
		} else {
			t.define(ref, string(sh.kbuf), -1, r.Metadata(i).Type)
		}
	}
	t.used = max(t.used, sh.maxTs)
}

// sweepRefs forgets the dictionaries no block used for refTableIdle.
func (sh *shard) sweepRefs() {
	for id, t := range sh.refTables {
		if t.used < sh.maxTs-refTableIdle {
			delete(sh.refTables, id)
		}
	}
}

func sameString(a, b string) bool {
	return len(a) == len(b) && unsafe.StringData(a) == unsafe.StringData(b)
}
