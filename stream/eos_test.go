package stream

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/augur-ops/augur/proto"
)

const testParts = 4

// env of one Kafka test: a kfake cluster, or the real broker named by
// AUGUR_KAFKA_BROKERS with topics unique to the test.
type kafkaEnv struct {
	brokers []string
	fake    *kfake.Cluster
	cfg     Config // base member config
	adm     *kadm.Client
	cl      *kgo.Client
}

func newKafkaEnv(t *testing.T) *kafkaEnv {
	t.Helper()
	var brokers []string
	var fake *kfake.Cluster
	if b := os.Getenv("AUGUR_KAFKA_BROKERS"); b != "" {
		brokers = strings.Split(b, ",")
	} else {
		c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.GroupMinSessionTimeout(100*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.Close)
		fake = c
		brokers = c.ListenAddrs()
	}
	var rnd [4]byte
	_, _ = rand.Read(rnd[:])
	// Kafka's topic names are letters, digits, '.', '_' and '-' (kfake
	// takes any).
	suffix := strings.Map(func(r rune) rune {
		if r == '.' || r == '_' || r == '-' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' {
			return r
		}
		return '-'
	}, t.Name()) + "-" + hex.EncodeToString(rnd[:])
	cfg := Config{
		Brokers:            brokers,
		Group:              "g-" + suffix,
		SamplesTopic:       "samples-" + suffix,
		DecisionsTopic:     "decisions-" + suffix,
		StateTopic:         "state-" + suffix,
		Rules:              testRules(t),
		SigningKey:         testKey,
		AllowedLateness:    5 * time.Second,
		IdleTimeout:        time.Minute,
		MaxPollRecords:     40,
		TransactionTimeout: 3 * time.Second,
		SessionTimeout:     1500 * time.Millisecond,
		RebalanceTimeout:   5 * time.Second,
		RestoreTimeout:     20 * time.Second,
		Logger:             slog.New(slog.DiscardHandler),
	}
	if testing.Verbose() {
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	adm := kadm.NewClient(cl)
	ctx := t.Context()
	if _, err := adm.CreateTopic(ctx, testParts, 1, nil, cfg.SamplesTopic); err != nil {
		t.Fatal(err)
	}
	vcfg := cfg
	if err := vcfg.Validate(); err != nil {
		t.Fatal(err)
	}
	if err := EnsureTopics(ctx, adm, &vcfg, 1, 2); err != nil {
		t.Fatal(err)
	}
	return &kafkaEnv{brokers: brokers, fake: fake, cfg: cfg, adm: adm, cl: cl}
}

// produce writes the input in chunks (one chunk = the next n records of
// every partition), calling between(i) after chunk i.
func (k *kafkaEnv) produce(t *testing.T, in map[int32][][]byte, chunks int, between func(i int)) {
	t.Helper()
	maxLen := 0
	for _, r := range in {
		maxLen = max(maxLen, len(r))
	}
	per := (maxLen + chunks - 1) / chunks
	for c := range chunks {
		var recs []*kgo.Record
		for p := range int32(testParts) {
			r := in[p]
			for i := c * per; i < min((c+1)*per, len(r)); i++ {
				recs = append(recs, &kgo.Record{Topic: k.cfg.SamplesTopic, Partition: p, Value: r[i]})
			}
		}
		if err := k.cl.ProduceSync(t.Context(), recs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
		if between != nil {
			between(c)
		}
	}
}

// member is one running Stream.
type member struct {
	cancel context.CancelFunc
	done   chan struct{}
	err    error
}

func (k *kafkaEnv) start(t *testing.T, id string, mod func(*Config)) *member {
	t.Helper()
	cfg := k.cfg
	cfg.TransactionalID = k.cfg.Group + "-" + id
	cfg.Logger = cfg.Logger.With("member", id)
	if mod != nil {
		mod(&cfg)
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	m := &member{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(m.done)
		m.err = s.Run(ctx)
	}()
	t.Cleanup(func() { m.stop(t) })
	return m
}

// stop shuts the member down gracefully and checks it returned cleanly
// (a killed member returns errKilled).
func (m *member) stop(t *testing.T) {
	t.Helper()
	m.cancel()
	select {
	case <-m.done:
	case <-time.After(30 * time.Second):
		t.Fatal("member did not stop")
	}
	if m.err != nil && !errors.Is(m.err, errKilled) {
		t.Errorf("member: %v", m.err)
	}
}

// waitDone waits until the group has committed every samples record.
func (k *kafkaEnv) waitDone(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	for {
		ends, err1 := k.adm.ListEndOffsets(ctx, k.cfg.SamplesTopic)
		offs, err2 := k.adm.FetchOffsets(ctx, k.cfg.Group)
		if err1 == nil && err2 == nil && ends.Error() == nil {
			done := true
			ends.Each(func(o kadm.ListedOffset) {
				c, ok := offs.Lookup(o.Topic, o.Partition)
				if o.Offset > 0 && (!ok || c.At < o.Offset) {
					done = false
				}
			})
			if done {
				return
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("group did not consume everything: %v %v", err1, err2)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// check compares the committed decisions and the state in augur.state with
// the golden run: no decision missing or duplicated, same state.
func (k *kafkaEnv) check(t *testing.T, want goldenRun) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	var ends kadm.ListedOffsets
	for {
		var err error
		ends, err = k.adm.ListEndOffsets(ctx, k.cfg.DecisionsTopic)
		if err == nil && ends.Error() == nil {
			break
		}
		// A fresh topic can be missing from cached metadata for a moment.
		select {
		case <-ctx.Done():
			t.Fatalf("list decision offsets: %v %v", err, ends.Error())
		case <-time.After(50 * time.Millisecond):
		}
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(k.brokers...), kgo.ConsumeTopics(k.cfg.DecisionsTopic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.KeepControlRecords())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	pending := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset > 0 {
			pending[o.Partition] = o.Offset
		}
	})
	var got []string
	ids := map[string]int{}
	for len(pending) > 0 {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("reading decisions: %v (pending %v)", ctx.Err(), pending)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if r.Offset >= pending[r.Partition]-1 {
				delete(pending, r.Partition)
			}
			if r.Attrs.IsControl() {
				return
			}
			d, err := proto.UnmarshalDecision(r.Value)
			if err != nil {
				t.Fatal(err)
			}
			if err := proto.Verify(d, testKey); err != nil {
				t.Errorf("decision %s: %v", d.Id, err)
			}
			if string(r.Key) != d.Target {
				t.Errorf("decision %s keyed %q, want its target %q", d.Id, r.Key, d.Target)
			}
			ids[d.Id]++
			got = append(got, string(r.Value))
		})
	}
	for id, n := range ids {
		if n > 1 {
			t.Errorf("decision %s committed %d times", id, n)
		}
	}
	sort.Strings(got)
	if strings.Join(got, "\n") != strings.Join(want.decisions, "\n") {
		t.Errorf("committed decisions (%d) differ from the golden run (%d)", len(got), len(want.decisions))
	}
	s, err := New(k.cfg)
	if err != nil {
		t.Fatal(err)
	}
	for p := range int32(testParts) {
		sh, err := s.restore(ctx, k.adm, p)
		if err != nil {
			t.Fatal(err)
		}
		snap, err := sh.snapshot()
		if err != nil {
			t.Fatal(err)
		}
		equalSnapshots(t, p, snap, want.snapshots[p])
	}
}

// dataRecords counts the data records of topic up to its end, read with
// the given isolation level: read uncommitted counts aborted records too.
func (k *kafkaEnv) dataRecords(t *testing.T, topic string, level kgo.IsolationLevel) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	ends, err := k.adm.ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	pending := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset > 0 {
			pending[o.Partition] = o.Offset
		}
	})
	cl, err := kgo.NewClient(kgo.SeedBrokers(k.brokers...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(level), kgo.KeepControlRecords())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	n := 0
	for len(pending) > 0 {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("reading %s: %v", topic, ctx.Err())
		}
		fs.EachRecord(func(r *kgo.Record) {
			if r.Offset >= pending[r.Partition]-1 {
				delete(pending, r.Partition)
			}
			if !r.Attrs.IsControl() {
				n++
			}
		})
	}
	return n
}

// assertAborted checks that some transaction was really aborted: augur.state
// holds records a read-committed reader does not see.
func (k *kafkaEnv) assertAborted(t *testing.T) {
	t.Helper()
	all := k.dataRecords(t, k.cfg.StateTopic, kgo.ReadUncommitted())
	committed := k.dataRecords(t, k.cfg.StateTopic, kgo.ReadCommitted())
	t.Logf("augur.state: %d records, %d committed", all, committed)
	if all <= committed {
		t.Errorf("no aborted state records (%d written, %d committed): the failure did not happen mid-transaction", all, committed)
	}
}

func eosInput(t *testing.T) (map[int32][][]byte, goldenRun) {
	cfg := testConfig(t)
	in := genInput(t, cfg.Rules, testParts, 300)
	return in, runGolden(t, &cfg, in)
}

// TestEOSUninterrupted is the baseline: one member, no failures.
func TestEOSUninterrupted(t *testing.T) {
	in, want := eosInput(t)
	k := newKafkaEnv(t)
	reg := prometheus.NewPedanticRegistry()
	var processed atomic.Int64
	a := k.start(t, "a", func(c *Config) {
		c.Registerer = reg
		c.OnProcessed = func(_ *kgo.Record, n int) { processed.Add(int64(n)) }
	})
	k.produce(t, in, 4, nil)
	k.waitDone(t)
	k.check(t, want)
	a.stop(t)

	// With no failure every record is processed once: the metrics count
	// exactly what the golden run did.
	var records int
	for _, r := range in {
		records += len(r)
	}
	wantMetrics := map[string]float64{
		"augur_stream_records_processed_total":                    float64(records),
		"augur_stream_samples_processed_total":                    float64(want.stats.samples),
		`augur_stream_samples_dropped_total{reason="duplicate"}`:  float64(want.stats.duplicates),
		`augur_stream_samples_dropped_total{reason="late"}`:       float64(want.stats.late),
		`augur_stream_samples_dropped_total{reason="unresolved"}`: 0,
		"augur_stream_decisions_total":                            float64(len(want.decisions)),
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			name := mf.GetName()
			if name == "augur_stream_samples_dropped_total" {
				name += `{reason="` + m.GetLabel()[0].GetValue() + `"}`
			}
			got[name] += m.GetCounter().GetValue()
		}
	}
	for name, v := range wantMetrics {
		if got[name] != v {
			t.Errorf("%s = %v, want %v", name, got[name], v)
		}
	}
	if n := processed.Load(); n < int64(want.stats.samples) {
		t.Errorf("OnProcessed saw %d samples, want at least %d", n, want.stats.samples)
	}
}

// TestEOSMemberKilledMidTransaction kills a member after it produced the
// decisions and checkpoint of a transaction, before it ends it, without
// leaving the group (a static member, as a crashed pod). The others take
// its partitions after the session timeout, wait for the broker to abort
// its transaction, restore and continue.
func TestEOSMemberKilledMidTransaction(t *testing.T) {
	in, want := eosInput(t)
	k := newKafkaEnv(t)
	a := k.start(t, "a", func(c *Config) {
		c.InstanceID = "a"
		c.testBeforeEnd = func(txn int) error {
			if txn == 4 {
				return errKilled
			}
			return nil
		}
	})
	k.start(t, "b", nil)
	k.produce(t, in, 6, func(i int) {
		if i == 2 {
			k.start(t, "c", nil)
		}
	})
	k.waitDone(t)
	<-a.done
	if !errors.Is(a.err, errKilled) {
		t.Errorf("member a returned %v, want it killed", a.err)
	}
	k.check(t, want)
	k.assertAborted(t)
}

// TestEOSJoinLeaveUnderLoad adds and removes members while records arrive.
func TestEOSJoinLeaveUnderLoad(t *testing.T) {
	in, want := eosInput(t)
	k := newKafkaEnv(t)
	a := k.start(t, "a", nil)
	var b *member
	k.produce(t, in, 8, func(i int) {
		switch i {
		case 1:
			b = k.start(t, "b", nil)
		case 2:
			k.start(t, "c", nil)
		case 3:
			a.stop(t)
		case 5:
			k.start(t, "d", nil)
		case 6:
			b.stop(t)
		}
	})
	k.waitDone(t)
	k.check(t, want)
}

// TestEOSPartitionsBackAfterIdleRebalances: member a owns every partition
// and sits idle while b, c and d join one after another (franz-go passes on
// only the first of those revocations: no transaction ends in between),
// the others process input for their partitions, then leave, and a takes
// the partitions back. It restores them from augur.state instead of going
// on with the shards it held before: the decisions and the state are the
// golden run's.
func TestEOSPartitionsBackAfterIdleRebalances(t *testing.T) {
	in, want := eosInput(t)
	k := newKafkaEnv(t)
	k.start(t, "a", nil)
	var others []*member
	k.produce(t, in, 4, func(i int) {
		switch i {
		case 0:
			k.waitDone(t)
			for _, id := range []string{"b", "c", "d"} {
				others = append(others, k.start(t, id, nil))
				time.Sleep(2 * time.Second) // a rebalance each, a idle
			}
		case 1:
			k.waitDone(t)
			for _, m := range others {
				m.stop(t)
			}
		}
	})
	k.waitDone(t)
	k.check(t, want)
}

// TestEOSGroupRestart kills every member mid-transaction, then restarts the
// whole group with the same identities: the restarted producers fence the
// dead ones (aborting their open transactions) and resume from augur.state.
func TestEOSGroupRestart(t *testing.T) {
	in, want := eosInput(t)
	k := newKafkaEnv(t)
	kill := func(at int) func(*Config) {
		return func(c *Config) {
			c.InstanceID = c.TransactionalID
			c.testBeforeEnd = func(txn int) error {
				if txn == at {
					return errKilled
				}
				return nil
			}
		}
	}
	a := k.start(t, "a", kill(3))
	b := k.start(t, "b", kill(2))
	k.produce(t, in, 4, func(i int) {
		if i == 1 {
			for _, m := range []*member{a, b} {
				select {
				case <-m.done:
				case <-time.After(30 * time.Second):
					t.Fatal("member was not killed")
				}
			}
			k.start(t, "a", func(c *Config) { c.InstanceID = c.TransactionalID })
			k.start(t, "b", func(c *Config) { c.InstanceID = c.TransactionalID })
		}
	})
	k.waitDone(t)
	k.check(t, want)
	k.assertAborted(t)
}

// TestEOSStateTrimmed runs the group as on the embedded broker: every
// transaction writes its partitions' whole state and then deletes
// augur.state before it (StateTrimInterval), and the group restarts
// mid-input, restoring from the trimmed topic. The decisions and the
// restored state are the golden run's, and each partition of augur.state
// ends up holding about one whole state, not a record and a marker for
// every transaction.
func TestEOSStateTrimmed(t *testing.T) {
	in, want := eosInput(t)
	k := newKafkaEnv(t)
	if k.fake == nil {
		t.Skip("trimming is for the embedded broker: Apache Kafka refuses DeleteRecords on a compact-only topic (its cleaner removes the markers)")
	}
	trim := func(c *Config) {
		c.InstanceID = c.TransactionalID
		c.StateTrimInterval = time.Nanosecond
	}
	a := k.start(t, "a", trim)
	k.produce(t, in, 4, func(i int) {
		if i == 1 {
			k.waitDone(t)
			a.stop(t)
			a = k.start(t, "a", trim)
		}
	})
	k.waitDone(t)
	k.check(t, want)

	// The trim follows the commit: wait for the last one.
	deadline := time.Now().Add(30 * time.Second)
	for {
		starts, err1 := k.adm.ListStartOffsets(t.Context(), k.cfg.StateTopic)
		ends, err2 := k.adm.ListEndOffsets(t.Context(), k.cfg.StateTopic)
		var bad []string
		if err := errors.Join(err1, err2, starts.Error(), ends.Error()); err != nil {
			bad = append(bad, err.Error())
		} else {
			for p := range int32(testParts) {
				s, _ := starts.Lookup(k.cfg.StateTopic, p)
				e, _ := ends.Lookup(k.cfg.StateTopic, p)
				// The last whole state, its tombstones and its marker.
				if limit := int64(2*len(want.snapshots[p]) + 2); s.Offset == 0 || e.Offset-s.Offset > limit {
					bad = append(bad, fmt.Sprintf("partition %d holds offsets %d to %d, want a start past 0 and at most %d records", p, s.Offset, e.Offset, limit))
				}
			}
		}
		if len(bad) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("augur.state not trimmed: %s", strings.Join(bad, "; "))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestCommitIntervalSpacesTransactions: records that arrive within the
// commit interval of a transaction wait for the next one, and a member
// waiting out the interval stops at once when asked.
func TestCommitIntervalSpacesTransactions(t *testing.T) {
	in, _ := eosInput(t)
	k := newKafkaEnv(t)
	var commits atomic.Int64
	a := k.start(t, "a", func(c *Config) {
		c.CommitInterval = time.Hour
		c.OnCommitted = func(int, int) { commits.Add(1) }
	})
	first := map[int32][][]byte{0: in[0][:1]}
	k.produce(t, first, 1, nil)
	k.waitDone(t)
	if n := commits.Load(); n != 1 {
		t.Fatalf("%d transactions for the first record, want 1", n)
	}
	k.produce(t, map[int32][][]byte{0: in[0][1:2]}, 1, nil)
	time.Sleep(2 * time.Second)
	if n := commits.Load(); n != 1 {
		t.Errorf("%d transactions within the hour's interval, want 1", n)
	}
	a.stop(t)
}

// TestEOSAbortRollsBack makes the broker refuse one transaction's offset
// commit with ILLEGAL_GENERATION (as after a rebalance), so the session
// aborts it: the member must roll its state back and redo the work, ending
// like the golden run.
func TestEOSAbortRollsBack(t *testing.T) {
	in, want := eosInput(t)
	k := newKafkaEnv(t)
	if k.fake == nil {
		t.Skip("needs kfake to inject the failure")
	}
	var once sync.Once
	n := 0
	k.fake.ControlKey(int16(kmsg.TxnOffsetCommit), func(req kmsg.Request) (kmsg.Response, error, bool) {
		n++
		if n < 3 {
			k.fake.KeepControl()
			return nil, nil, false
		}
		handled := false
		var resp kmsg.Response
		once.Do(func() {
			r := req.(*kmsg.TxnOffsetCommitRequest)
			rr := r.ResponseKind().(*kmsg.TxnOffsetCommitResponse)
			for _, tp := range r.Topics {
				rt := kmsg.NewTxnOffsetCommitResponseTopic()
				rt.Topic = tp.Topic
				for _, p := range tp.Partitions {
					rp := kmsg.NewTxnOffsetCommitResponseTopicPartition()
					rp.Partition = p.Partition
					rp.ErrorCode = kerr.IllegalGeneration.Code
					rt.Partitions = append(rt.Partitions, rp)
				}
				rr.Topics = append(rr.Topics, rt)
			}
			resp, handled = rr, true
		})
		return resp, nil, handled
	})
	var aborts int
	var mu sync.Mutex
	k.start(t, "a", func(c *Config) {
		c.OnCommitted = func(int, int) {}
		c.testBeforeEnd = func(int) error { return nil }
		c.Logger = slog.New(countHandler{n: &aborts, mu: &mu, msg: "transaction aborted, partitions rolled back"})
	})
	k.produce(t, in, 3, nil)
	k.waitDone(t)
	k.check(t, want)
	k.assertAborted(t)
	mu.Lock()
	defer mu.Unlock()
	if aborts == 0 {
		t.Error("no transaction was aborted: the injected failure did not happen")
	}
}

// countHandler counts log records with one message.
type countHandler struct {
	n   *int
	mu  *sync.Mutex
	msg string
}

func (h countHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h countHandler) Handle(_ context.Context, r slog.Record) error {
	if r.Message == h.msg {
		h.mu.Lock()
		*h.n++
		h.mu.Unlock()
	}
	return nil
}
func (h countHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h countHandler) WithGroup(string) slog.Handler      { return h }

// TestRecordsLostToRetentionAreCounted: a group that fell behind the
// retention of augur.samples resumes at the log start and counts the
// records it never read (augur_stream_records_lost_total).
func TestRecordsLostToRetentionAreCounted(t *testing.T) {
	k := newKafkaEnv(t)
	in, _ := eosInput(t)
	half := map[int32][][]byte{}
	rest := map[int32][][]byte{}
	for p, recs := range in {
		half[p], rest[p] = recs[:len(recs)/2], recs[len(recs)/2:]
	}
	k.produce(t, half, 1, nil)
	m := k.start(t, "a", nil)
	k.waitDone(t)
	m.stop(t)

	k.produce(t, rest, 1, nil)
	ctx := t.Context()
	offs, err := k.adm.FetchOffsets(ctx, k.cfg.Group)
	if err != nil {
		t.Fatal(err)
	}
	committed, ok := offs.Lookup(k.cfg.SamplesTopic, 0)
	if !ok {
		t.Fatal("no committed offset for partition 0")
	}
	// Retention deletes 5 records the group has not read.
	del := kadm.Offsets{}
	del.Add(kadm.Offset{Topic: k.cfg.SamplesTopic, Partition: 0, At: committed.At + 5})
	if res, err := k.adm.DeleteRecords(ctx, del); err != nil || res.Error() != nil {
		t.Fatalf("delete records: %v %v", err, res.Error())
	}
	reg := prometheus.NewRegistry()
	k.start(t, "b", func(c *Config) { c.Registerer = reg })
	k.waitDone(t)
	if got := counterOf(t, reg, "augur_stream_records_lost_total"); got != 5 {
		t.Errorf("augur_stream_records_lost_total %v, want the 5 records deleted before they were read", got)
	}
}

// counterOf returns the value of the counter name in reg.
func counterOf(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	t.Fatalf("no counter %s", name)
	return 0
}
