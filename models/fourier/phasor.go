package fourier

import "sync"

// Tables of base phasors, shared by all models: a season of per steps has
// the table basePhasor(r, per) for r in [0, per), built on first use, so
// that a fit looks its phasors up instead of calling math.Sincos. The
// number and size of the tables are bounded (the periods may come from a
// checkpoint); a season without a table computes its phasors.
const (
	maxTableLen     = 1 << 16 // a week at 10-second steps fits
	maxTableEntries = 1 << 20 // 16 MiB in all
)

var phasorTables struct {
	sync.Mutex
	m       map[int64]*[]complex128
	entries int
}

// phasorTable returns the table of a season of per ≥ 2 steps, or nil.
func phasorTable(per int64) *[]complex128 {
	if per < 2 || per > maxTableLen {
		return nil
	}
	pt := &phasorTables
	pt.Lock()
	defer pt.Unlock()
	if t, ok := pt.m[per]; ok {
		return t
	}
	if pt.entries+int(per) > maxTableEntries {
		return nil
	}
	t := make([]complex128, per)
	for r := range t {
		t[r] = basePhasor(int64(r), per)
	}
	if pt.m == nil {
		pt.m = make(map[int64]*[]complex128)
	}
	pt.m[per] = &t
	pt.entries += int(per)
	return &t
}
