package anomaly

// Series is one series' detector for callers that keep an object per
// series: a Detector and that series' State. The zero value is not usable;
// get one from Detector.NewSeries. Not safe for concurrent use.
type Series struct {
	d *Detector
	s State
}

// NewSeries returns a fresh series scored by d.
func (d *Detector) NewSeries() *Series { return &Series{d: d} }

// Update scores sample (ts, v) and advances the series; see Detector.Update.
func (x *Series) Update(ts int64, v float64) Result { return x.d.Update(&x.s, ts, v) }

// AppendBinary appends the series' checkpoint to dst; see State.AppendBinary.
func (x *Series) AppendBinary(dst []byte) []byte { return x.s.AppendBinary(dst) }

// UnmarshalBinary restores the series from a checkpoint; see
// State.UnmarshalBinary.
func (x *Series) UnmarshalBinary(b []byte) error { return x.s.UnmarshalBinary(b) }

// UpdateBatch scores a columnar block of samples: sample i, (ts[i], vs[i]),
// belongs to the series whose state is states[idx[i]], and its result goes
// to out[i]. Samples of one series must be in time order within the block.
// ts, vs, idx and out must have the same length; it panics otherwise, or if
// an index is out of range.
func (d *Detector) UpdateBatch(states []State, idx []int32, ts []int64, vs []float64, out []Result) {
	if len(ts) != len(idx) || len(vs) != len(idx) || len(out) != len(idx) {
		panic("anomaly: UpdateBatch columns of different lengths")
	}
	for i, k := range idx {
		out[i] = d.Update(&states[k], ts[i], vs[i])
	}
}
