package actuators

import (
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/augur-ops/augur/proto"
)

// metrics are the Actuator's own series.
type metrics struct {
	actions      *prometheus.CounterVec
	refusals     *prometheus.CounterVec
	taintedNodes prometheus.Gauge
	zonalShifts  prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		actions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "augur_actuator_actions_total",
			Help: "Decisions handled, by decision kind and outcome (one audit record each).",
		}, []string{"kind", "outcome"}),
		refusals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "augur_actuator_refusals_total",
			Help: "Decisions stopped, by the guardrail that stopped them.",
		}, []string{"guardrail"}),
		taintedNodes: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "augur_actuator_tainted_nodes",
			Help: "Nodes carrying an augur taint, as last observed.",
		}),
		zonalShifts: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "augur_actuator_active_zonal_shifts",
			Help: "Active zonal shifts on the resources augur acted on, as last observed.",
		}),
	}
	// Pre-create the closed label sets so that dashboards see zeros.
	for _, k := range proto.Kinds {
		for _, o := range proto.Outcomes {
			m.actions.WithLabelValues(k, o)
		}
	}
	for _, g := range Guardrails {
		m.refusals.WithLabelValues(g)
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.actions, m.refusals, m.taintedNodes, m.zonalShifts} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register actuator metrics: %w", err)
		}
	}
	return m, nil
}

// APIMetrics measures the calls executors make to external APIs. Create one
// with NewAPIMetrics and pass it to every executor; a nil *APIMetrics
// records nothing.
type APIMetrics struct {
	latency *prometheus.HistogramVec
	errors  *prometheus.CounterVec
}

// NewAPIMetrics registers augur_actuator_api_request_duration_seconds and
// augur_actuator_api_errors_total on reg (labels: api = kubernetes or arc,
// operation = a closed set per executor).
func NewAPIMetrics(reg prometheus.Registerer) (*APIMetrics, error) {
	m := &APIMetrics{
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "augur_actuator_api_request_duration_seconds",
			Help:    "Latency of the requests executors make to the Kubernetes and AWS ARC APIs.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 12),
		}, []string{"api", "operation"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "augur_actuator_api_errors_total",
			Help: "Failed requests to the Kubernetes and AWS ARC APIs.",
		}, []string{"api", "operation"}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.latency, m.errors} {
			if err := reg.Register(c); err != nil {
				var are prometheus.AlreadyRegisteredError
				if errors.As(err, &are) {
					return nil, fmt.Errorf("register actuator api metrics (create them once and share): %w", err)
				}
				return nil, fmt.Errorf("register actuator api metrics: %w", err)
			}
		}
	}
	return m, nil
}

// Observe records one request to api's operation that started at start and
// ended now with err.
func (m *APIMetrics) Observe(api, operation string, start time.Time, err error) {
	if m == nil {
		return
	}
	m.latency.WithLabelValues(api, operation).Observe(time.Since(start).Seconds())
	if err != nil {
		m.errors.WithLabelValues(api, operation).Inc()
	}
}
