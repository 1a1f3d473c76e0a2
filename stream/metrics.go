package stream

import (
	"math"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/augur-ops/augur/models/bank"
	"github.com/augur-ops/augur/proto"
)

// metrics are the stream's Prometheus metrics. Label values come from closed
// sets (partition numbers, decision kinds, fixed reasons and outcomes).
type metrics struct {
	lag          *prometheus.GaugeVec
	records      prometheus.Counter
	lost         prometheus.Counter
	samples      prometheus.Counter
	dropped      *prometheus.CounterVec
	badRecords   prometheus.Counter
	badReports   prometheus.Counter
	activeSeries *prometheus.GaugeVec
	stateBytes   *prometheus.GaugeVec
	created      prometheus.Counter
	evicted      prometheus.Counter
	txnSeconds   *prometheus.HistogramVec
	ckptSeconds  prometheus.Histogram
	ckptRecords  prometheus.Counter
	trimErrors   prometheus.Counter
	restoreSecs  prometheus.Histogram
	decisions    *prometheus.CounterVec
	recordDelay  prometheus.Histogram
	forecast     *forecastMetrics
}

// forecastMetrics export the forecaster banks of the scaling rules, labelled
// by rule name (from the rules file, a closed set) and, for the served model,
// the bank's member names. With several tenants on one rule the gauges show
// the group that closed a window last.
type forecastMetrics struct {
	accuracy *prometheus.GaugeVec
	mape     *prometheus.GaugeVec
	mase     *prometheus.GaugeVec
	coverage *prometheus.GaugeVec
	served   *prometheus.GaugeVec
	refits   *prometheus.CounterVec
	repairs  *prometheus.CounterVec
	value    *prometheus.GaugeVec
	replicas *prometheus.GaugeVec
}

func newForecastMetrics() *forecastMetrics {
	return &forecastMetrics{
		accuracy: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "augur_forecast_accuracy_ratio",
			Help: "Recent accuracy (1 - MAPE) of the served forecast at the rule's horizon; below the bank's threshold (0.85) it refits.",
		}, []string{"rule"}),
		mape: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "augur_forecast_mape_ratio",
			Help: "Recent mean absolute percentage error of the served forecast at the rule's horizon, as a ratio.",
		}, []string{"rule"}),
		mase: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "augur_forecast_mase_ratio",
			Help: "Recent mean absolute scaled error of the served forecast (below 1 beats the naive forecast).",
		}, []string{"rule"}),
		coverage: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "augur_forecast_interval_coverage_ratio",
			Help: "Share of recent actual values inside the served forecast's 80% interval.",
		}, []string{"rule"}),
		served: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "augur_forecast_served_model",
			Help: "1 for the bank member serving the rule's forecast, 0 for the others.",
		}, []string{"rule", "model"}),
		refits: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "augur_forecast_refits_total",
			Help: "Refits of the forecaster bank triggered by falling accuracy.",
		}, []string{"rule"}),
		repairs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "augur_forecast_member_repairs_total",
			Help: "Bank members re-initialised from the history because their forecast was not finite or their recent MASE reached 10.",
		}, []string{"rule"}),
		value: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "augur_forecast_value",
			Help: "The scaling signal of the rule's last closed window (observed) and its forecast at the horizon with the 80% interval (forecast, lower, upper).",
		}, []string{"rule", "quantity"}),
		replicas: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "augur_scaling_recommended_replicas",
			Help: "Replicas the forecast's upper bound asks for, before stabilization and step bounds.",
		}, []string{"rule"}),
	}
}

func (f *forecastMetrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{f.accuracy, f.mape, f.mase, f.coverage, f.served, f.refits, f.repairs, f.value, f.replicas}
}

// observe exports the state of a group's bank after a closed window. A nil
// receiver (shards run without a Stream, in tests) does nothing.
func (f *forecastMetrics) observe(rule string, g *group, observed float64, fc bank.Result) {
	if f == nil {
		return
	}
	sc := g.fc.Scores()
	if sc.N > 0 {
		f.accuracy.WithLabelValues(rule).Set(sc.Accuracy / 100)
		f.mape.WithLabelValues(rule).Set(sc.MAPE / 100)
		if !math.IsNaN(sc.MASE) {
			f.mase.WithLabelValues(rule).Set(sc.MASE)
		}
		f.coverage.WithLabelValues(rule).Set(sc.Coverage)
	}
	for i, name := range bank.MemberNames() {
		v := 0.0
		if i == g.fc.Served() {
			v = 1
		}
		f.served.WithLabelValues(rule, name).Set(v)
	}
	if n := g.fc.Refits(); n > g.refits {
		f.refits.WithLabelValues(rule).Add(float64(n - g.refits))
		g.refits = n
	}
	if n := g.fc.Repairs(); n > g.repairs {
		f.repairs.WithLabelValues(rule).Add(float64(n - g.repairs))
		g.repairs = n
	}
	f.value.WithLabelValues(rule, "observed").Set(observed)
	f.value.WithLabelValues(rule, "forecast").Set(fc.Point)
	f.value.WithLabelValues(rule, "lower").Set(fc.Lower)
	f.value.WithLabelValues(rule, "upper").Set(fc.Upper)
}

// recommend exports the replicas a rule's forecast asks for.
func (f *forecastMetrics) recommend(rule string, n int32) {
	if f != nil {
		f.replicas.WithLabelValues(rule).Set(float64(n))
	}
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "augur_stream_consumer_lag_records",
			Help: "Records of augur.samples behind the high watermark, per owned partition.",
		}, []string{"partition"}),
		lost: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "augur_stream_records_lost_total",
			Help: "Records of augur.samples deleted by retention before the stream read them (it resumed at the log start, past them).",
		}),
		records: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "augur_stream_records_processed_total",
			Help: "Samples records (blocks) processed, including ones later rolled back by an aborted transaction.",
		}),
		samples: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "augur_stream_samples_processed_total",
			Help: "Samples applied to series state.",
		}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "augur_stream_samples_dropped_total",
			Help: "Samples dropped, by reason: duplicate (equal timestamp), late (older than the series or the watermark), unresolved (a series number whose definition the stream did not read: it began reading after it), not_finite (NaN other than the stale marker, or ±Inf: no consumer can use it), negative_counter (a counter's value below 0).",
		}, []string{"reason"}),
		badRecords: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "augur_stream_bad_records_total",
			Help: "Samples records that did not decode and were skipped.",
		}),
		badReports: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "augur_stream_bad_action_records_total",
			Help: "Records of the actions topic (the actuators' reports) that did not decode and were skipped.",
		}),
		activeSeries: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "augur_stream_active_series",
			Help: "Series held in memory, per owned partition.",
		}, []string{"partition"}),
		stateBytes: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "augur_stream_state_bytes",
			Help: "Estimated bytes of series state (columns, index and label sets), per owned partition.",
		}, []string{"partition"}),
		created: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "augur_stream_series_created_total",
			Help: "Series added to the state.",
		}),
		evicted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "augur_stream_series_evicted_total",
			Help: "Series removed because they were idle or a stale marker ended them.",
		}),
		txnSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "augur_stream_transaction_duration_seconds",
			Help:    "Time from beginning a transaction to its end, by outcome (commit, abort).",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 16),
		}, []string{"outcome"}),
		ckptSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "augur_stream_checkpoint_duration_seconds",
			Help:    "Time to encode the changed state of one partition for a transaction.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16),
		}),
		ckptRecords: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "augur_stream_checkpoint_records_total",
			Help: "State records written to augur.state.",
		}),
		trimErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "augur_stream_state_trim_errors_total",
			Help: "Failed deletions of augur.state records before a whole checkpoint (stream.Config.StateTrimInterval).",
		}),
		restoreSecs: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "augur_stream_restore_duration_seconds",
			Help:    "Time to restore one partition's state from augur.state.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 16),
		}),
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "augur_stream_decisions_total",
			Help: "Decisions committed to augur.decisions, by kind.",
		}, []string{"kind"}),
		recordDelay: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "augur_stream_record_delay_seconds",
			Help:    "Time from a samples record's produce timestamp to the end of its processing.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 18),
		}),
		forecast: newForecastMetrics(),
	}
	for _, k := range proto.Kinds {
		m.decisions.WithLabelValues(k)
	}
	m.dropped.WithLabelValues("duplicate")
	m.dropped.WithLabelValues("late")
	if reg != nil {
		reg.MustRegister(m.lag, m.lost, m.records, m.samples, m.dropped, m.badRecords, m.badReports, m.activeSeries,
			m.stateBytes, m.created, m.evicted, m.txnSeconds, m.ckptSeconds, m.ckptRecords, m.trimErrors,
			m.restoreSecs, m.decisions, m.recordDelay)
		reg.MustRegister(m.forecast.collectors()...)
	}
	return m
}

// flush adds a shard's counters to the metrics and resets them.
func (m *metrics) flush(sh *shard) {
	st := &sh.stats
	p := strconv.Itoa(int(sh.part))
	m.records.Add(float64(st.records))
	m.samples.Add(float64(st.samples))
	m.dropped.WithLabelValues("duplicate").Add(float64(st.duplicates))
	m.dropped.WithLabelValues("late").Add(float64(st.late))
	m.dropped.WithLabelValues("unresolved").Add(float64(st.unresolved))
	m.dropped.WithLabelValues("not_finite").Add(float64(st.notFinite))
	m.dropped.WithLabelValues("negative_counter").Add(float64(st.negative))
	m.badRecords.Add(float64(st.badRecords))
	m.created.Add(float64(st.created))
	m.evicted.Add(float64(st.evicted))
	m.activeSeries.WithLabelValues(p).Set(float64(len(sh.keys)))
	m.stateBytes.WithLabelValues(p).Set(float64(sh.stateBytes()))
	*st = shardStats{}
}

// forget removes the per-partition series of a partition no longer owned.
func (m *metrics) forget(part int32) {
	p := strconv.Itoa(int(part))
	m.lag.DeleteLabelValues(p)
	m.activeSeries.DeleteLabelValues(p)
	m.stateBytes.DeleteLabelValues(p)
}

func partLabel(p int32) string { return strconv.Itoa(int(p)) }
