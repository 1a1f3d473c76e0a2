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
