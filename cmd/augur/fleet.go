package main

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/prometheus/prompb"
)

// grayFleet is a scenario sender independent of bench/grayfailure: three
// zones x three instances, each exposing a request counter with code 200
// and 500 and a classic latency histogram, scraped every 15 s.
type grayFleet struct {
	rng     *rand.Rand
	buckets []float64
	// cumulative counters per instance: code 200, code 500, sum, count,
	// buckets
	ok, fail, sum, count []float64
	hist                 [][]float64
}

const (
	fleetZones     = 3
	fleetInstances = 3
	fleetScrape    = 15 * time.Second
)

func newGrayFleet(seed uint64) *grayFleet {
	n := fleetZones * fleetInstances
	f := &grayFleet{rng: rand.New(rand.NewPCG(seed, 1)), buckets: []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10},
		ok: make([]float64, n), fail: make([]float64, n), sum: make([]float64, n), count: make([]float64, n), hist: make([][]float64, n)}
	for i := range f.hist {
		f.hist[i] = make([]float64, len(f.buckets))
	}
	return f
}

// fault degrades one zone over [from, to): extra latency in seconds, or a
// share of failed requests.
type fleetFault struct {
	zone         int
	from, to     time.Time
	extra, error float64
}

// scrape advances every instance by one scrape interval ending at at and
// returns the series as Prometheus would remote-write them. Each instance
// serves about 100 requests/s with a lognormal latency (median 40 ms); a
// fault applies to the share of the interval it covers.
func (f *grayFleet) scrape(at time.Time, faults []fleetFault) []prompb.TimeSeries {
	var out []prompb.TimeSeries
	ms := at.UnixMilli()
	for z := range fleetZones {
		for i := range fleetInstances {
			k := z*fleetInstances + i
			from := at.Add(-fleetScrape)
			n := int(1500 + 40*f.rng.NormFloat64())
			for range n {
				t := from.Add(time.Duration(f.rng.Float64() * float64(fleetScrape)))
				v := 0.040 * math.Exp(0.5*f.rng.NormFloat64())
				failed := f.rng.Float64() < 0.001
				for _, ft := range faults {
					if ft.zone == z && !t.Before(ft.from) && t.Before(ft.to) {
						v += ft.extra
						failed = failed || f.rng.Float64() < ft.error
					}
				}
				if failed {
					f.fail[k]++
				} else {
					f.ok[k]++
				}
				f.sum[k] += v
				f.count[k]++
				for b, le := range f.buckets {
					if v <= le {
						f.hist[k][b]++
					}
				}
			}
			base := []prompb.Label{{Name: "instance", Value: fmt.Sprintf("10.%d.0.%d:8080", z, i)}, {Name: "job", Value: "web"},
				{Name: "zone", Value: fmt.Sprintf("use1-az%d", z+1)}}
			add := func(name string, v float64, extra ...prompb.Label) {
				lbls := append([]prompb.Label{{Name: "__name__", Value: name}}, extra...)
				lbls = append(lbls, base...)
				slices.SortFunc(lbls, func(a, b prompb.Label) int { return strings.Compare(a.Name, b.Name) })
				out = append(out, prompb.TimeSeries{Labels: lbls, Samples: []prompb.Sample{{Timestamp: ms, Value: v}}})
			}
			add("http_requests_total", f.ok[k], prompb.Label{Name: "code", Value: "200"})
			add("http_requests_total", f.fail[k], prompb.Label{Name: "code", Value: "500"})
			add("http_request_duration_seconds_sum", f.sum[k])
			add("http_request_duration_seconds_count", f.count[k])
			for b, le := range f.buckets {
				add("http_request_duration_seconds_bucket", f.hist[k][b], prompb.Label{Name: "le", Value: strconv.FormatFloat(le, 'g', -1, 64)})
			}
			add("http_request_duration_seconds_bucket", f.count[k], prompb.Label{Name: "le", Value: "+Inf"})
		}
	}
	return out
}
