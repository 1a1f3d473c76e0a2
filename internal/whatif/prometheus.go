package whatif

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"maps"
	"math"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/api"
	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"

	"github.com/augur-ops/augur/proto"
)

// MaxPointsPerQuery is how many steps one query_range asks for: Prometheus
// refuses more than 11,000 points per series. Raw reads use it per series
// too.
const MaxPointsPerQuery = 10_000

// MaxSamplesPerQuery bounds the samples one raw read asks for, well under
// Prometheus' query.max-samples (50 million by default).
const MaxSamplesPerQuery = 2_000_000

// Prometheus reads history over Prometheus' HTTP API.
type Prometheus struct {
	addr string
	api  v1.API
	// Timeout bounds each request (default 2m).
	Timeout time.Duration
}

// NewPrometheus returns a reader of the Prometheus at addr; rt carries
// authentication and TLS (nil: http.DefaultTransport).
func NewPrometheus(addr string, rt http.RoundTripper) (*Prometheus, error) {
	u, err := url.Parse(addr)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("prometheus %q: want an http:// or https:// URL", addr)
	}
	c, err := api.NewClient(api.Config{Address: addr, RoundTripper: rt})
	if err != nil {
		return nil, fmt.Errorf("prometheus %s: %w", addr, err)
	}
	// addr is what reports and errors show: a password in the URL (Go's
	// client sends it as basic auth) is not printed or written there.
	return &Prometheus{addr: u.Redacted(), api: v1.NewAPI(c), Timeout: 2 * time.Minute}, nil
}

// explain turns a client error into one naming the server and what failed.
func (p *Prometheus) explain(what string, err error) error {
	var ne net.Error
	var ue *url.Error
	var ae *v1.Error
	var ce *tls.CertificateVerificationError
	switch {
	case errors.As(err, &ae) && (strings.Contains(ae.Msg, "401") || strings.Contains(ae.Msg, "403")):
		return fmt.Errorf("prometheus %s: %s: not authorised (%s): check the credentials in -http-config", p.addr, what, ae.Msg)
	case errors.As(err, &ae):
		return fmt.Errorf("prometheus %s: %s: %s (%s)", p.addr, what, ae.Msg, ae.Type)
	case errors.As(err, &ce):
		return fmt.Errorf("prometheus %s: %s: TLS: %w (a CA file goes in -http-config tls_config.ca_file)", p.addr, what, ce)
	case errors.As(err, &ne) || errors.As(err, &ue):
		return fmt.Errorf("prometheus %s unreachable: %s: %w", p.addr, what, err)
	}
	return fmt.Errorf("prometheus %s: %s: %w", p.addr, what, err)
}

func (p *Prometheus) ctx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, p.Timeout)
}

// Check asks for the server's build information, so that an unreachable or
// wrong address fails before any rule is read.
func (p *Prometheus) Check(ctx context.Context) error {
	c, cancel := p.ctx(ctx)
	defer cancel()
	if _, err := p.api.Buildinfo(c); err != nil {
		// Some Prometheus-compatible servers lack buildinfo; a query
		// tells reachability too.
		if _, _, _, qerr := p.api.Query(c, "1", time.Now()); qerr != nil {
			return p.explain("check", qerr)
		}
	}
	return nil
}

// CountSeries returns how many series selector matches in [from, to].
func (p *Prometheus) CountSeries(ctx context.Context, selector string, from, to time.Time) (int, error) {
	c, cancel := p.ctx(ctx)
	defer cancel()
	sets, _, _, err := p.api.Series(c, []string{selector}, from, to)
	if err != nil {
		return 0, p.explain("series "+selector, err)
	}
	return len(sets), nil
}

// ScrapeInterval estimates the sampling interval of the series selector
// picks: the median spacing of their raw samples in the 10 minutes before a
// few times of [from, to]. It returns 0 when no series has two samples
// there.
func (p *Prometheus) ScrapeInterval(ctx context.Context, selector string, from, to time.Time) (time.Duration, error) {
	span := to.Sub(from)
	var gaps []int64
	for _, at := range []time.Time{to, from.Add(span / 2), from.Add(span / 4), from.Add(min(span, 10*time.Minute))} {
		c, cancel := p.ctx(ctx)
		v, _, _, err := p.api.Query(c, selector+"[10m]", at)
		cancel()
		if err != nil {
			return 0, p.explain("scrape interval of "+selector, err)
		}
		m, _ := v.(model.Matrix)
		for _, s := range m {
			for i := 1; i < len(s.Values); i++ {
				gaps = append(gaps, int64(s.Values[i].Timestamp-s.Values[i-1].Timestamp))
			}
		}
		if len(gaps) > 0 {
			break
		}
	}
	if len(gaps) == 0 {
		return 0, nil
	}
	slices.Sort(gaps)
	ms := gaps[len(gaps)/2]
	return max(time.Duration(math.Round(float64(ms)/1000))*time.Second, time.Second), nil
}

// Series is one series read for a rule: labels sorted by name and its
// samples, ascending in time.
type Series struct {
	Labels []proto.Label
	Type   string // "counter", "gauge", ... or "" when Prometheus has no metadata
	Ts     []int64
	Vs     []float64
}

// Gap is a span with no sample of any selected series.
type Gap struct {
	From time.Time `json:"from"`
	To   time.Time `json:"to"`
}

// Raw reads the raw samples of the series selector picks in [from, to],
// with their own timestamps, as remote write would have sent them: range
// vector queries (selector[chunk]) ending at successive times, each chunk
// holding about MaxPointsPerQuery samples per series at the scrape
// interval step and at most MaxSamplesPerQuery in all for n series. A
// query_range would repeat a series' last sample for up to the lookback
// delta (5m) across a hole and move every sample onto its step.
func (p *Prometheus) Raw(ctx context.Context, selector string, n int, from, to time.Time, step time.Duration, progress func(float64)) ([]Series, error) {
	chunk := step * time.Duration(min(MaxPointsPerQuery, max(MaxSamplesPerQuery/max(n, 1), 10)))
	chunk = chunk.Truncate(time.Second)
	all := merger{lo: from.UnixMilli(), by: map[string]*Series{}}
	for end := from.Add(chunk); ; end = end.Add(chunk) {
		end = minTime(end, to)
		q := selector + "[" + model.Duration(chunk).String() + "]"
		c, cancel := p.ctx(ctx)
		v, _, _, err := p.api.Query(c, q, end)
		cancel()
		if err != nil {
			return nil, p.explain("query "+q, err)
		}
		m, ok := v.(model.Matrix)
		if !ok {
			return nil, fmt.Errorf("prometheus %s: query %s: got a %s, want a range vector", p.addr, q, v.Type())
		}
		all.add(m)
		if progress != nil {
			progress(math.Min(1, float64(end.Sub(from))/float64(max(to.Sub(from), 1))))
		}
		if !end.Before(to) {
			break
		}
	}
	return all.series(), nil
}

// merger joins the series of successive chunks: a sample before lo or not
// newer than its series' last is dropped (range selectors include their
// start in Prometheus 2, so a chunk's first sample may be the previous
// chunk's last).
type merger struct {
	lo int64
	by map[string]*Series
}

func (m *merger) add(mat model.Matrix) {
	for _, ss := range mat {
		sig := ss.Metric.String()
		s := m.by[sig]
		if s == nil {
			s = &Series{Labels: sortedLabels(ss.Metric)}
			m.by[sig] = s
		}
		for _, sp := range ss.Values {
			ts := int64(sp.Timestamp)
			if ts < m.lo || (len(s.Ts) > 0 && ts <= s.Ts[len(s.Ts)-1]) {
				continue
			}
			s.Ts = append(s.Ts, ts)
			s.Vs = append(s.Vs, float64(sp.Value))
		}
	}
}

// series returns the merged series in the order of their label sets
// (model.Metric.String, the key they were merged under).
func (m *merger) series() []Series {
	keys := slices.Sorted(maps.Keys(m.by))
	out := make([]Series, len(keys))
	for i, k := range keys {
		out[i] = *m.by[k]
	}
	return out
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// QueryRange evaluates query over [from, to] at step, in chunks of at most
// MaxPointsPerQuery steps, and returns its series merged across chunks.
func (p *Prometheus) QueryRange(ctx context.Context, query string, from, to time.Time, step time.Duration) ([]Series, error) {
	from = from.Truncate(step)
	chunk := step * MaxPointsPerQuery
	all := merger{lo: from.UnixMilli(), by: map[string]*Series{}}
	for start := from; !start.After(to); start = start.Add(chunk) {
		end := minTime(start.Add(chunk-step), to)
		c, cancel := p.ctx(ctx)
		v, _, _, err := p.api.QueryRange(c, query, v1.Range{Start: start, End: end, Step: step})
		cancel()
		if err != nil {
			return nil, p.explain("query_range "+query, err)
		}
		m, ok := v.(model.Matrix)
		if !ok {
			return nil, fmt.Errorf("prometheus %s: query_range %s: got a %s, want a matrix", p.addr, query, v.Type())
		}
		all.add(m)
	}
	return all.series(), nil
}

// Types fills each series' Type from Prometheus' metadata, by metric name;
// names Prometheus has no metadata for (backfilled or pushed series) keep
// "" and the stream infers counters from the name.
func (p *Prometheus) Types(ctx context.Context, series []Series) error {
	types := map[string]string{}
	for i := range series {
		name, _ := proto.LabelValue(series[i].Labels, "__name__")
		t, ok := types[name]
		if !ok {
			c, cancel := p.ctx(ctx)
			md, err := p.api.Metadata(c, name, "1")
			cancel()
			if err != nil {
				return p.explain("metadata of "+name, err)
			}
			if m := md[name]; len(m) > 0 && m[0].Type != "unknown" {
				t = string(m[0].Type)
			}
			types[name] = t
		}
		series[i].Type = t
	}
	return nil
}

// Gaps returns the spans longer than twice the step in [from, to] where no
// series has a sample.
func Gaps(series []Series, from, to time.Time, step time.Duration) []Gap {
	var ts []int64
	for _, s := range series {
		ts = append(ts, s.Ts...)
	}
	slices.Sort(ts)
	ts = slices.Compact(ts)
	var gaps []Gap
	prev := from.UnixMilli()
	limit := 2 * step.Milliseconds()
	for _, t := range append(ts, to.UnixMilli()) {
		if t-prev > limit {
			gaps = append(gaps, Gap{From: time.UnixMilli(prev).UTC(), To: time.UnixMilli(t).UTC()})
		}
		prev = t
	}
	return gaps
}

func sortedLabels(m model.Metric) []proto.Label {
	out := make([]proto.Label, 0, len(m))
	for k, v := range m {
		out = append(out, proto.Label{Name: string(k), Value: string(v)})
	}
	slices.SortFunc(out, func(a, b proto.Label) int { return strings.Compare(a.Name, b.Name) })
	return out
}
