package bank

import "time"

// Forecaster adapts a Bank to the stream's Forecaster interface
// (stream.Forecaster): Update without a result, Forecast as four values,
// AppendBinary with an error.
type Forecaster struct {
	// Bank is the adapted bank.
	Bank *Bank
}

// NewForecaster returns a Forecaster over a new Bank for cfg.
func NewForecaster(cfg Config) (*Forecaster, error) {
	b, err := New(cfg)
	if err != nil {
		return nil, err
	}
	return &Forecaster{Bank: b}, nil
}

// Update feeds the value of the window ending at ts (unix ms); duplicates,
// late and non-finite values are dropped.
func (f *Forecaster) Update(ts int64, v float64) { f.Bank.Update(ts, v) }

// Forecast returns the served forecast and its 80% interval at horizon
// after the last update. ok is false until the served forecast has been
// scored at the decision horizon at least once per step of it (warm-up).
func (f *Forecaster) Forecast(horizon time.Duration) (point, lo, hi float64, ok bool) {
	r := f.Bank.Forecast(horizon)
	return r.Point, r.Lower, r.Upper, f.Bank.Scores().N >= float64(f.Bank.h)
}

// AppendBinary appends the bank's checkpoint to dst; it never fails.
func (f *Forecaster) AppendBinary(dst []byte) ([]byte, error) { return f.Bank.AppendBinary(dst), nil }

// UnmarshalBinary restores a checkpoint written by AppendBinary.
func (f *Forecaster) UnmarshalBinary(b []byte) error { return f.Bank.UnmarshalBinary(b) }
