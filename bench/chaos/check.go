package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// The checker shares no code with the stream or the actuators: it reads
// the topics with franz-go (read-committed), the samples with arrow-go, the
// decisions and audit records as plain JSON, and the Deployments with
// client-go.

// verdict is what the checker found.
type verdict struct {
	samples        int64 // acknowledged samples checked
	lost           int64 // acknowledged, not in augur.samples
	lostExamples   []string
	lostAt         []time.Time // scrape times of the lost samples (first million)
	duplicateAt    []time.Time // creation times of decisions seen or audited twice
	decisions      int
	duplicates     int // decision ids seen twice, or audited twice
	unaudited      int // decisions with no audit record of their own
	doubleApplied  int // the same step applied twice
	finalMismatch  []string
	finalChecked   int // Deployments compared with their last applied change
	actions        int
	applied        int
	byOutcome      map[string]int
	byKind         map[string]int
	inForceRecords int
}

// ok: nothing lost, duplicated, unaudited or applied twice, and the
// Deployments hold the last change applied to them (at least one was
// changed: a run that scaled nothing has checked nothing).
func (v verdict) ok() bool {
	return v.lost == 0 && v.duplicates == 0 && v.unaudited == 0 && v.doubleApplied == 0 &&
		len(v.finalMismatch) == 0 && v.finalChecked > 0 && v.decisions > 0
}

// readTopic calls fn for every committed record of topic, from the start to
// the end offsets when readTopic began.
func readTopic(ctx context.Context, brokers []string, topic string, fn func(*kgo.Record)) error {
	adm, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		return err
	}
	ends, err := kadm.NewClient(adm).ListEndOffsets(ctx, topic)
	adm.Close()
	if err != nil {
		return fmt.Errorf("end offsets of %s: %w", topic, err)
	}
	want := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset > 0 {
			want[o.Partition] = o.Offset
		}
	})
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topic),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxBytes(64<<20))
	if err != nil {
		return err
	}
	defer cl.Close()
	// Transaction markers and aborted records take offsets too, so the
	// last offset before the end may never come back: a partition is done
	// at its end or when fetches stay empty for five seconds (nothing
	// writes any more when the checker runs).
	deadline := time.Now().Add(10 * time.Minute)
	for len(want) > 0 {
		if time.Now().After(deadline) {
			return fmt.Errorf("read %s: not done after 10m (left: %v)", topic, want)
		}
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		f := cl.PollFetches(pctx)
		cancel()
		if err := ctx.Err(); err != nil {
			return err
		}
		n := 0
		f.EachError(func(_ string, p int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) {
				fmt.Printf("chaos: check: fetch %s[%d]: %v\n", topic, p, err)
			}
		})
		f.EachRecord(func(r *kgo.Record) {
			n++
			if e, ok := want[r.Partition]; ok && r.Offset < e {
				fn(r)
				if r.Offset+1 >= e {
					delete(want, r.Partition)
				}
			}
		})
		if n == 0 {
			return nil
		}
	}
	return nil
}

// checkSamples removes from acked every acknowledged sample found in
// augur.samples with the same value; what is left was lost.
func checkSamples(ctx context.Context, brokers []string, acked map[string]map[int64]float64, v *verdict) error {
	for _, m := range acked {
		v.samples += int64(len(m))
	}
	var decodeErrs int
	// Series references (block version 3): a row with a series_ref and no
	// labels names the series of the row of its partition that defined
	// the number, within the writer's dictionary (augur.series.dict).
	type seriesRef struct {
		part int32
		dict string
		ref  uint32
	}
	defined := map[seriesRef][]byte{}
	err := readTopic(ctx, brokers, "augur.samples", func(r *kgo.Record) {
		rd, err := ipc.NewReader(bytes.NewReader(r.Value))
		if err != nil {
			decodeErrs++
			return
		}
		defer rd.Release()
		dict := ""
		if md := rd.Schema().Metadata(); md.FindKey("augur.series.dict") >= 0 {
			dict = md.Values()[md.FindKey("augur.series.dict")]
		}
		for rd.Next() {
			rec := rd.RecordBatch()
			var resolve func(row int, series []byte) []byte
			if dict != "" {
				refs := rec.Column(9).(*array.Uint32)
				resolve = func(row int, series []byte) []byte {
					ref := refs.Value(row)
					if ref == 0 {
						return series
					}
					k := seriesRef{r.Partition, dict, ref}
					if len(series) > 0 {
						defined[k] = bytes.Clone(series)
						return series
					}
					return defined[k] // nil: defined before the topic's start
				}
			}
			labels := blockLabels(rec, resolve)
			tsList := rec.Column(1).(*array.List)
			tsVals := tsList.ListValues().(*array.Int64)
			vList := rec.Column(2).(*array.List)
			vVals := vList.ListValues().(*array.Float64)
			for row := 0; row < int(rec.NumRows()); row++ {
				names, values := labels(row)
				m := acked[seriesKey(names, values)]
				if m == nil {
					continue
				}
				tlo, thi := tsList.ValueOffsets(row)
				vlo, _ := vList.ValueOffsets(row)
				for i := tlo; i < thi; i++ {
					ts := tsVals.Value(int(i))
					if want, ok := m[ts]; ok && math.Float64bits(want) == math.Float64bits(vVals.Value(int(vlo+i-tlo))) {
						delete(m, ts)
					}
				}
			}
		}
	})
	if err != nil {
		return err
	}
	if decodeErrs > 0 {
		return fmt.Errorf("%d records of augur.samples are not Arrow IPC streams", decodeErrs)
	}
	keys := make([]string, 0, len(acked))
	for k := range acked {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		for ts := range acked[k] {
			v.lost++
			if len(v.lostAt) < 1e6 {
				v.lostAt = append(v.lostAt, time.UnixMilli(ts))
			}
			if len(v.lostExamples) < 5 {
				v.lostExamples = append(v.lostExamples, fmt.Sprintf("%s @ %s", k, time.UnixMilli(ts).UTC().Format(time.RFC3339Nano)))
			}
		}
	}
	return nil
}

// blockLabels returns a function giving the label names and values of a
// row of a samples block: from the series column (0xff name 0xfe value per
// label) or, in a version 1 block, the labels map.
func blockLabels(rec arrow.RecordBatch, resolve func(row int, series []byte) []byte) func(row int) (names, values []string) {
	if m, ok := rec.Column(0).(*array.Map); ok {
		keys := m.Keys().(*array.String)
		vals := m.Items().(*array.String)
		return func(row int) (names, values []string) {
			lo, hi := m.ValueOffsets(row)
			for i := lo; i < hi; i++ {
				names = append(names, keys.Value(int(i)))
				values = append(values, vals.Value(int(i)))
			}
			return names, values
		}
	}
	series := rec.Column(0).(*array.Binary)
	return func(row int) (names, values []string) {
		b := series.Value(row)
		if resolve != nil {
			b = resolve(row, b)
		}
		if len(b) == 0 {
			return nil, nil
		}
		for _, pair := range bytes.Split(b, []byte{0xff})[1:] {
			n, v, _ := bytes.Cut(pair, []byte{0xfe})
			names, values = append(names, string(n)), append(values, string(v))
		}
		return names, values
	}
}

type decisionJSON struct {
	ID        string    `json:"id"`
	CreatedAt time.Time `json:"createdAt"`
	Kind      string    `json:"kind"`
	Target    string    `json:"target"`
	Desired   struct {
		Replicas int32 `json:"replicas"`
	} `json:"desired"`
}

type actionJSON struct {
	DecisionID string            `json:"decisionId"`
	Kind       string            `json:"kind"`
	Target     string            `json:"target"`
	Outcome    string            `json:"outcome"`
	After      map[string]string `json:"after"`
}

// checkLoop reads augur.decisions and augur.actions: no decision id twice,
// exactly one audit record of its own per decision (header augur-record:
// decision), no step applied twice, and the Deployments' replicas equal to
// the last change applied to each.
func checkLoop(ctx context.Context, brokers []string, cs kubernetes.Interface, namespace string, v *verdict) error {
	v.byOutcome, v.byKind = map[string]int{}, map[string]int{}
	seen := map[string]time.Time{}
	var badJSON int
	err := readTopic(ctx, brokers, "augur.decisions", func(r *kgo.Record) {
		var d decisionJSON
		if json.Unmarshal(r.Value, &d) != nil || d.ID == "" {
			badJSON++
			return
		}
		v.decisions++
		v.byKind[d.Kind]++
		if _, ok := seen[d.ID]; ok {
			v.duplicates++
			v.duplicateAt = append(v.duplicateAt, d.CreatedAt)
		}
		seen[d.ID] = d.CreatedAt
	})
	if err != nil {
		return err
	}
	own := map[string]int{}
	applied := map[string]int{}
	last := map[string]string{} // target -> replicas of the last applied change
	err = readTopic(ctx, brokers, "augur.actions", func(r *kgo.Record) {
		var a actionJSON
		if json.Unmarshal(r.Value, &a) != nil {
			badJSON++
			return
		}
		v.actions++
		v.byOutcome[a.Outcome]++
		record := ""
		for _, h := range r.Headers {
			if h.Key == "augur-record" {
				record = string(h.Value)
			}
		}
		if record == "decision" {
			own[a.DecisionID]++
		} else {
			v.inForceRecords++
		}
		if a.Outcome == "applied" {
			v.applied++
			step := a.DecisionID + "/" + a.After["replicas"] + "/" + a.After["node"] + "/" + a.After["away_from"]
			applied[step]++
			if a.After["replicas"] != "" {
				last[a.Target] = a.After["replicas"]
			}
		}
	})
	if err != nil {
		return err
	}
	if badJSON > 0 {
		return fmt.Errorf("%d records of augur.decisions or augur.actions are not JSON", badJSON)
	}
	for id, at := range seen {
		switch n := own[id]; {
		case n == 0:
			v.unaudited++
		case n > 1:
			v.duplicates += n - 1
			v.duplicateAt = append(v.duplicateAt, at)
		}
	}
	for _, n := range applied {
		if n > 1 {
			v.doubleApplied += n - 1
		}
	}
	deps, err := cs.AppsV1().Deployments(namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	for _, d := range deps.Items {
		target := "k8s/deployment/" + d.Namespace + "/" + d.Name
		want, ok := last[target]
		if !ok {
			continue
		}
		v.finalChecked++
		if got := strconv.Itoa(int(*d.Spec.Replicas)); got != want {
			v.finalMismatch = append(v.finalMismatch, fmt.Sprintf("%s: %s replicas, last applied %s", target, got, want))
		}
	}
	return nil
}
