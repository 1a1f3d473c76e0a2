package ingest

import "github.com/prometheus/client_golang/prometheus"

// metrics of the receiver. Label values come from closed sets: protocol
// version, status reason, discard reason.
type metrics struct {
	requests        *prometheus.CounterVec
	duration        *prometheus.HistogramVec
	samples         *prometheus.CounterVec
	histograms      prometheus.Counter
	exemplars       prometheus.Counter
	discarded       map[string]prometheus.Counter
	inflight        prometheus.Gauge
	overloaded      prometheus.Counter
	records         prometheus.Counter
	produceErrors   prometheus.Counter
	produceDuration prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "augur_ingest_requests_total",
			Help: "Remote-write requests answered, by protocol version and outcome.",
		}, []string{"version", "outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:                        "augur_ingest_request_duration_seconds",
			Help:                        "Time from request start to answer, including the wait for Kafka acks.",
			Buckets:                     []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
			NativeHistogramBucketFactor: 1.1,
		}, []string{"version"}),
		samples: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "augur_ingest_samples_total",
			Help: "Float samples written to Kafka, by protocol version.",
		}, []string{"version"}),
		histograms: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "augur_ingest_histograms_total",
			Help: "Native histogram samples written to Kafka.",
		}),
		exemplars: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "augur_ingest_exemplars_total",
			Help: "Exemplars written to Kafka.",
		}),
		inflight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "augur_ingest_inflight_requests",
			Help: "Requests being processed.",
		}),
		overloaded: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "augur_ingest_overloaded_requests_total",
			Help: "Requests answered 503 because the in-flight limits stayed full.",
		}),
		records: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "augur_ingest_kafka_records_total",
			Help: "Sample-block records produced to Kafka.",
		}),
		produceErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "augur_ingest_kafka_produce_errors_total",
			Help: "Requests whose records Kafka did not acknowledge (answered 503).",
		}),
		produceDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "augur_ingest_kafka_produce_duration_seconds",
			Help:    "Time from producing a request's records to the last acknowledgement.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 5},
		}),
		discarded: map[string]prometheus.Counter{},
	}
	discarded := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "augur_ingest_discarded_samples_total",
		Help: "Samples not written because their series or sample broke a validation rule, by rule.",
	}, []string{"reason"})
	for _, r := range discardReasons {
		m.discarded[r] = discarded.WithLabelValues(r)
	}
	reg.MustRegister(m.requests, m.duration, m.samples, m.histograms, m.exemplars, m.inflight,
		m.overloaded, m.records, m.produceErrors, m.produceDuration, discarded)
	return m
}
