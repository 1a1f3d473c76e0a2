package backtest

import (
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/augur-ops/augur/models"
	"github.com/augur-ops/augur/models/bank"
	"github.com/augur-ops/augur/models/holtwinters"
	"github.com/augur-ops/augur/models/seasonal"
)

// Options configure a backtest.
type Options struct {
	// Horizon is how far ahead each scored forecast is made. Default 30m.
	Horizon time.Duration
	// Step is the bank's step. Default: the median spacing of the input.
	Step time.Duration
	// Warmup is the leading span of the series whose rows are fed but not
	// scored. Default 24h.
	Warmup time.Duration
	// Bank overrides the bank configuration; its Step is replaced by Step,
	// its Horizon by Horizon and a MaxHorizon shorter than Horizon plus two
	// steps is raised to that.
	Bank bank.Config
	// HoltSF and HoltTF are the smoothing and trend factors of the
	// Prometheus double_exponential_smoothing baseline. Default 0.3, 0.1.
	HoltSF, HoltTF float64
}

// Forecasters scored by a backtest, in the order of Row.Forecasts and of
// the Metrics slice: the bank's members, the bank, and the baselines.
const (
	ColSeasonalNaive = bank.SeasonalNaive
	ColHoltWinters   = bank.HoltWinters
	ColFourier       = bank.Fourier
	ColDrift         = bank.Drift
	ColBank          = bank.NumMembers
	ColDailyNaive    = ColBank + 1 // value one day before the target
	ColNaive         = ColBank + 2 // last value (the MASE scale)
	ColHolt          = ColBank + 3 // Prometheus double_exponential_smoothing
	NumCols          = ColBank + 4
)

// ColNames names the columns.
var ColNames = [NumCols]string{"seasonal_naive", "holt_winters", "fourier_rls", "drift", "bank", "daily_naive", "naive", "prom_holt"}

// Row is one scored input row.
type Row struct {
	// Ts is the row's time in unix milliseconds, Actual its value.
	Ts     int64
	Actual float64
	// Forecasts made with data up to Ts - Horizon, by column.
	Forecasts [NumCols]models.Forecast
	// Model is the member the bank served.
	Model string
}

// Metrics are one forecaster's scores over a backtest.
type Metrics struct {
	Name string
	// MASE is the mean absolute error over that of the naive forecast
	// (the value one horizon earlier) on the same rows.
	MASE float64
	// SMAPE and MAPE are in percent; rows with a zero actual are skipped by
	// MAPE, rows with zero actual and forecast by sMAPE.
	SMAPE, MAPE float64
	// Coverage is the share of rows inside the 80% interval.
	Coverage float64
	// MAE is the mean absolute error.
	MAE float64
	N   int
}

// Result is a backtest's output.
type Result struct {
	Rows    []Row
	Metrics [NumCols]Metrics
	Step    time.Duration
	Horizon time.Duration
	// Periods are the seasonalities the bank detected by the end.
	Periods []time.Duration
	// Refits is the number of accuracy-triggered refits.
	Refits uint64
	// Served counts rows served by each member.
	Served map[string]int
}

// Run replays pts (in time order; out-of-order rows are scored but not fed)
// and scores every row after the warm-up.
func Run(pts []Point, opt Options) (*Result, error) {
	if len(pts) == 0 {
		return nil, errors.New("backtest: no samples")
	}
	if opt.Horizon == 0 {
		opt.Horizon = 30 * time.Minute
	}
	if opt.Step == 0 {
		opt.Step = InferStep(pts)
	}
	if opt.Warmup == 0 {
		opt.Warmup = 24 * time.Hour
	}
	if opt.HoltSF == 0 {
		opt.HoltSF, opt.HoltTF = 0.3, 0.1
	}
	cfg := opt.Bank
	cfg.Step, cfg.Horizon = opt.Step, opt.Horizon
	if cfg.MaxHorizon < opt.Horizon+2*opt.Step {
		cfg.MaxHorizon = opt.Horizon + 2*opt.Step
	}
	bk, err := bank.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("backtest: %w", err)
	}
	hSteps := bk.HorizonSteps(opt.Horizon)
	memory := float64(6*time.Hour) / float64(opt.Step)
	var daily seasonal.Naive
	daily.Init(int(24*time.Hour/opt.Step), hSteps, memory, 0)
	var last seasonal.Naive
	last.Init(1, hSteps, memory, 0)
	var holt holtwinters.Holt
	holt.Init(opt.HoltSF, opt.HoltTF, hSteps, memory)

	res := &Result{Step: opt.Step, Horizon: opt.Horizon, Served: map[string]int{}}
	hMs := opt.Horizon.Milliseconds()
	start := pts[0].Ts + opt.Warmup.Milliseconds()
	lastTs := int64(math.MinInt64)
	k := 0 // next row to forecast
	emit := func(limit int64) {
		for ; k < len(pts) && pts[k].Ts-hMs < limit; k++ {
			if pts[k].Ts < start || lastTs == math.MinInt64 {
				continue
			}
			h := time.Duration(pts[k].Ts-lastTs) * time.Millisecond
			hs := bk.HorizonSteps(h)
			row := Row{Ts: pts[k].Ts, Actual: pts[k].Value}
			for i := range bank.NumMembers {
				row.Forecasts[i] = bk.MemberForecast(i, h)
			}
			r := bk.Forecast(h)
			row.Forecasts[ColBank], row.Model = r.Forecast, r.Model
			row.Forecasts[ColDailyNaive] = daily.Forecast(hs)
			row.Forecasts[ColNaive] = last.Forecast(hs)
			row.Forecasts[ColHolt] = holt.Forecast(hs)
			res.Rows = append(res.Rows, row)
			res.Served[r.Model]++
		}
	}
	for _, p := range pts {
		emit(p.Ts)
		if p.Ts <= lastTs {
			continue
		}
		if bk.Update(p.Ts, p.Value) {
			nan := math.NaN()
			daily.Update(p.Value, nan)
			last.Update(p.Value, nan)
			holt.Update(p.Value, nan)
			lastTs = p.Ts
		}
	}
	emit(math.MaxInt64)
	res.Metrics = Score(res.Rows)
	res.Periods = bk.Periods()
	res.Refits = bk.Refits()
	return res, nil
}

// Score computes the metrics of every column over rows.
func Score(rows []Row) [NumCols]Metrics {
	var out [NumCols]Metrics
	var naiveAbs float64
	for _, r := range rows {
		naiveAbs += math.Abs(r.Actual - r.Forecasts[ColNaive].Point)
	}
	for c := range out {
		m := Metrics{Name: ColNames[c]}
		var abs, ape, sape, in float64
		var nPct, nS int
		for _, r := range rows {
			f := r.Forecasts[c]
			e := math.Abs(r.Actual - f.Point)
			abs += e
			if r.Actual != 0 {
				ape += 100 * e / math.Abs(r.Actual)
				nPct++
			}
			if d := math.Abs(r.Actual) + math.Abs(f.Point); d != 0 {
				sape += 200 * e / d
				nS++
			}
			if r.Actual >= f.Lower && r.Actual <= f.Upper {
				in++
			}
		}
		n := len(rows)
		m.N = n
		m.MASE, m.MAPE, m.SMAPE, m.Coverage, m.MAE = math.NaN(), math.NaN(), math.NaN(), math.NaN(), math.NaN()
		if n > 0 {
			m.MAE = abs / float64(n)
			m.Coverage = in / float64(n)
			if naiveAbs > 0 {
				m.MASE = abs / naiveAbs
			}
		}
		if nPct > 0 {
			m.MAPE = ape / float64(nPct)
		}
		if nS > 0 {
			m.SMAPE = sape / float64(nS)
		}
		out[c] = m
	}
	return out
}
