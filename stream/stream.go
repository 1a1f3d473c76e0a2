package stream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/augur-ops/augur/internal/kafkaconn"
	"github.com/augur-ops/augur/proto"
)

// Stream is one member of the stream consumer group on augur.samples. Each
// owned partition has a goroutine and a shard of state; every poll is one
// Kafka transaction holding the decisions it made, the checkpoint of the
// state it changed and the input offsets.
type Stream struct {
	cfg Config
	env *env
	m   *metrics
	log *slog.Logger

	mu      sync.Mutex
	dropped []int32 // partitions revoked or lost, not yet released by the loop
}

// errKilled stops a member without ending its transaction (tests only).
var errKilled = errors.New("member killed")

// New returns a Stream for cfg, after validating it.
func New(cfg Config) (*Stream, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("stream config: %w", err)
	}
	e, err := newEnv(&cfg)
	if err != nil {
		return nil, fmt.Errorf("stream config: %w", err)
	}
	m := newMetrics(cfg.Registerer)
	e.fm = m.forecast
	return &Stream{cfg: cfg, env: e, m: m, log: cfg.Logger}, nil
}

// job is the work of one partition in one transaction.
type job struct {
	records []*kgo.Record
	hwm     int64
	done    chan struct{}

	// Results, valid after done is closed.
	err       error
	decisions []*proto.Decision
	points    []*proto.ForecastPoint
	state     []stateRecord
	// whole is true when state is the partition's whole durable state:
	// once it commits, the state topic before it can be deleted.
	whole bool
	// trimAt is the offset of state's first record once produced.
	trimAt atomic.Int64
}

// worker is the goroutine and state of one owned partition.
type worker struct {
	part int32
	in   chan *job
	done chan struct{}
	sh   *shard // nil until restored; set to nil to roll back
	rd   proto.BlockReader
	// next is the offset of augur.samples the partition reads next: the
	// group's committed offset at a restore, then one past each record; -1
	// when the group never committed one (nothing read, nothing lost).
	next int64
}

// Run joins the group and processes until ctx is cancelled (then it ends
// the current transaction, leaves the group and returns nil) or a
// transaction cannot be ended (then it returns the error: the producer is
// fenced or the cluster is unusable, and the process should restart).
func (s *Stream) Run(ctx context.Context) error {
	c := &s.cfg
	if s.env.reports != nil {
		fctx, stop := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { defer close(done); s.followActions(fctx) }()
		defer func() { stop(); <-done }()
	}
	sess, admCl, err := s.connect()
	if err != nil {
		return err
	}
	m := &groupMember{s: s, sess: sess, adm: kadm.NewClient(admCl), workers: map[int32]*worker{}}
	m.forecasts = s.forecastsTopic(ctx, m.adm)
	defer func() {
		for p, w := range m.workers {
			s.stopWorker(w)
			s.m.forget(p)
		}
		admCl.Close()
		sess.Close()
	}()
	s.log.Info("stream member starting", "group", c.Group, "transactional_id", c.TransactionalID)
	var (
		fs    kgo.Fetches // polled, not yet in a transaction
		began time.Time   // of the last transaction
	)
	for txn := 1; ; {
		// Records that arrive within CommitInterval of the last
		// transaction's start are gathered for the next one. The client
		// keeps polling meanwhile: it fetches again only once what it
		// fetched was polled.
		wait := c.CommitInterval - time.Since(began)
		if n := fs.NumRecords(); n == 0 || (wait > 0 && n < c.MaxPollRecords) {
			pctx, cancel := ctx, context.CancelFunc(func() {})
			if n > 0 {
				pctx, cancel = context.WithTimeout(ctx, wait)
			}
			more := sess.PollRecords(pctx, c.MaxPollRecords-n)
			cancel()
			if more.IsClientClosed() || ctx.Err() != nil {
				s.log.Info("stream member stopping", "group", c.Group)
				return nil
			}
			if err := s.pollErrors(more); err != nil {
				return err
			}
			if d := s.releaseDropped(m.workers); len(d) > 0 {
				// Records gathered earlier from a partition no longer
				// owned are its new owner's to process.
				forgetPartitions(fs, c.SamplesTopic, d)
			}
			if more.NumRecords() > 0 {
				fs = append(fs, more...)
			}
			continue
		}
		began = time.Now()
		stop, err := m.transaction(ctx, fs, txn)
		fs = nil
		if stop || err != nil {
			return err
		}
		txn++
	}
}

// connect creates the group's transactional session and the admin client.
func (s *Stream) connect() (*kgo.GroupTransactSession, *kgo.Client, error) {
	c := &s.cfg
	opts := []kgo.Opt{
		kgo.SeedBrokers(c.Brokers...),
		kgo.ConsumerGroup(c.Group),
		kgo.ConsumeTopics(c.SamplesTopic),
		kgo.Balancers(kgo.CooperativeStickyBalancer()),
		kgo.TransactionalID(c.TransactionalID),
		kgo.TransactionTimeout(c.TransactionTimeout),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.SessionTimeout(c.SessionTimeout),
		kgo.HeartbeatInterval(min(3*time.Second, c.SessionTimeout/3)),
		kgo.RebalanceTimeout(c.RebalanceTimeout),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.RecordPartitioner(partitioner{state: c.StateTopic}),
		kgo.OnPartitionsAssigned(s.onAssigned),
		kgo.OnPartitionsRevoked(s.onDropped("revoked")),
		kgo.OnPartitionsLost(s.onDropped("lost")),
	}
	if c.InstanceID != "" {
		opts = append(opts, kgo.InstanceID(c.InstanceID))
	}
	opts = append(opts, c.ClientOpts...)
	sess, err := kgo.NewGroupTransactSession(opts...)
	if err != nil {
		return nil, nil, fmt.Errorf("create group session: %w", err)
	}
	admCl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(c.Brokers...)}, c.ClientOpts...)...)
	if err != nil {
		sess.Close()
		return nil, nil, fmt.Errorf("create admin client: %w", err)
	}
	return sess, admCl, nil
}

// pollErrors logs the fetch errors of a poll and returns the one that
// ends the member: an authorization error (retrying grants no ACL).
func (s *Stream) pollErrors(fs kgo.Fetches) error {
	var denied error
	fs.EachError(func(t string, p int32, err error) {
		switch {
		case kafkaconn.IsAuthorization(err):
			denied = fmt.Errorf("consume %s: %w", t, err)
		case !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded):
			s.log.Warn("fetch error", "topic", t, "partition", p, "err", err)
		}
	})
	if denied != nil {
		return kafkaconn.ACLHint(denied)
	}
	return nil
}

// groupMember is a running stream member: its session and its partitions'
// workers.
type groupMember struct {
	s         *Stream
	sess      *kgo.GroupTransactSession
	adm       *kadm.Client
	forecasts string // "" when augur.forecasts is not written
	workers   map[int32]*worker
}

// transaction processes one poll in one transaction: dispatch each
// partition's records to its worker, produce what the workers made, and
// commit it with the input offsets, or abort and roll the partitions back.
// stop is true when the member must stop without error (a shutdown).
func (m *groupMember) transaction(ctx context.Context, fs kgo.Fetches, txn int) (stop bool, err error) {
	s, c := m.s, &m.s.cfg
	if err := m.sess.Begin(); err != nil {
		return false, fmt.Errorf("begin transaction: %w", err)
	}
	began := time.Now()
	jobs, parts := m.dispatch(ctx, fs)
	decisions, perr, jobErr := m.produce(ctx, jobs, parts)
	if c.testBeforeEnd != nil {
		if err := c.testBeforeEnd(txn); errors.Is(err, errKilled) {
			// Make sure the broker holds the open transaction, then die
			// without ending it or leaving the group.
			_ = m.sess.Client().Flush(ctx)
			return false, err
		}
	}
	committed, produceErr, err := m.end(ctx, perr, jobErr)
	if !committed {
		// Roll back: the partitions reload their last committed state
		// from augur.state, and the session rewound to the committed
		// offsets.
		for _, p := range parts {
			if w := m.workers[p]; w != nil {
				w.sh = nil
			}
		}
		s.m.txnSeconds.WithLabelValues("abort").Observe(time.Since(began).Seconds())
	}
	if err != nil {
		return false, fmt.Errorf("end transaction: %w", err)
	}
	if jobErr != nil {
		if ctx.Err() != nil {
			s.log.Info("stream member stopping", "group", c.Group)
			return true, nil // a restore interrupted by the shutdown
		}
		return false, fmt.Errorf("process partitions: %w", jobErr)
	}
	if !committed {
		s.log.Info("transaction aborted, partitions rolled back", "partitions", len(parts), "produce_err", produceErr)
		return false, nil
	}
	if s.log.Enabled(ctx, slog.LevelDebug) {
		var first, last []int64
		for _, j := range jobs {
			first = append(first, j.records[0].Offset)
			last = append(last, j.records[len(j.records)-1].Offset)
		}
		s.log.Debug("transaction committed", "partitions", parts, "first", first, "last", last, "decisions", len(decisions))
	}
	s.m.txnSeconds.WithLabelValues("commit").Observe(time.Since(began).Seconds())
	m.trimState(ctx, jobs, parts)
	for _, d := range decisions {
		s.m.decisions.WithLabelValues(d.Kind).Inc()
	}
	if c.OnCommitted != nil {
		c.OnCommitted(fs.NumRecords(), len(decisions))
	}
	return false, nil
}

// dispatch hands each partition's records to its worker (started on its
// first records) and returns the jobs and their partitions.
func (m *groupMember) dispatch(ctx context.Context, fs kgo.Fetches) (jobs []*job, parts []int32) {
	// fs may hold several polls: one job per partition, records in order.
	fs.EachPartition(func(p kgo.FetchTopicPartition) {
		if len(p.Records) == 0 || p.Topic != m.s.cfg.SamplesTopic {
			return
		}
		if i := slices.Index(parts, p.Partition); i >= 0 {
			jobs[i].records = append(slices.Clip(jobs[i].records), p.Records...)
			jobs[i].hwm = p.HighWatermark
			return
		}
		jobs = append(jobs, &job{records: p.Records, hwm: p.HighWatermark, done: make(chan struct{})})
		parts = append(parts, p.Partition)
	})
	for i, j := range jobs {
		w := m.workers[parts[i]]
		if w == nil {
			w = &worker{part: parts[i], in: make(chan *job, 1), done: make(chan struct{})}
			m.workers[parts[i]] = w
			go m.s.work(ctx, m.adm, w)
		}
		w.in <- j
	}
	return jobs, parts
}

// produce waits for each job and produces its decisions, forecast points
// and state records in the transaction. perr collects the records that
// failed; jobErr the jobs that failed or output that did not encode.
func (m *groupMember) produce(ctx context.Context, jobs []*job, parts []int32) (decisions []*proto.Decision, perr *producedErr, jobErr error) {
	c := &m.s.cfg
	perr = &producedErr{}
	// Records are produced under a context that a shutdown does not
	// cancel: the transaction either commits all of them or aborts.
	pctx := context.WithoutCancel(ctx)
	for i, j := range jobs {
		<-j.done
		if j.err != nil {
			jobErr = errors.Join(jobErr, j.err)
			continue
		}
		for _, d := range j.decisions {
			v, err := proto.MarshalJSON(d)
			if err != nil {
				jobErr = errors.Join(jobErr, fmt.Errorf("encode decision %s: %w", d.Id, err))
				continue
			}
			m.sess.Produce(pctx, &kgo.Record{Topic: c.DecisionsTopic, Key: []byte(d.Target), Value: v,
				Headers: []kgo.RecordHeader{{Key: "kind", Value: []byte(d.Kind)}}}, perr.promise)
		}
		decisions = append(decisions, j.decisions...)
		if m.forecasts != "" {
			for _, p := range j.points {
				v, err := proto.MarshalForecastPoint(p)
				if err != nil {
					jobErr = errors.Join(jobErr, fmt.Errorf("encode forecast point of %s: %w", p.Rule, err))
					continue
				}
				m.sess.Produce(pctx, &kgo.Record{Topic: m.forecasts, Key: []byte(p.Target), Value: v}, perr.promise)
			}
		}
		j.trimAt.Store(-1)
		for k, r := range j.state {
			promise := perr.promise
			if k == 0 && j.whole {
				promise = func(rec *kgo.Record, err error) {
					if err == nil {
						j.trimAt.Store(rec.Offset)
					}
					perr.promise(rec, err)
				}
			}
			m.sess.Produce(pctx, &kgo.Record{Topic: c.StateTopic, Partition: parts[i], Key: r.key, Value: r.value}, promise)
		}
		m.s.m.ckptRecords.Add(float64(len(j.state)))
	}
	return decisions, perr, jobErr
}

// trimState deletes, for each job of a committed transaction that wrote
// its partition's whole durable state, the state topic's records before
// that state (Config.StateTrimInterval). A failure only leaves the topic
// longer than it needs to be: it is logged and counted.
func (m *groupMember) trimState(ctx context.Context, jobs []*job, parts []int32) {
	c := &m.s.cfg
	offs := kadm.Offsets{}
	for i, j := range jobs {
		if at := j.trimAt.Load(); j.whole && at > 0 {
			offs.AddOffset(c.StateTopic, parts[i], at, -1)
		}
	}
	if len(offs) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	resp, err := m.adm.DeleteRecords(ctx, offs)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		m.s.m.trimErrors.Inc()
		m.s.log.Warn("deleting augur.state records before a whole checkpoint failed: the topic keeps them until the next one", "err", err)
	}
}

// producedErr keeps the first error of the records produced in a
// transaction and counts the records that failed (their promises run on
// the client's goroutines). A broker that refuses one record usually
// refuses them all: joining every error made one log line of megabytes.
type producedErr struct {
	mu     sync.Mutex
	err    error
	failed int
}

func (p *producedErr) promise(_ *kgo.Record, err error) {
	if err != nil {
		p.mu.Lock()
		if p.err == nil {
			p.err = err
		}
		p.failed++
		p.mu.Unlock()
	}
}

// end waits for every record produced and commits the transaction, or
// aborts it when a record or a job failed: a record that failed must abort
// the transaction, or its offsets would commit without it. The transaction
// is ended even when ctx is cancelled: a shutdown commits the work it
// already did (bounded by the rebalance timeout) instead of leaving it to
// the broker's transaction timeout. It returns the produce errors seen.
func (m *groupMember) end(ctx context.Context, perr *producedErr, jobErr error) (committed bool, produceErr, err error) {
	c := &m.s.cfg
	flushCtx, cancelFlush := context.WithTimeout(context.WithoutCancel(ctx), c.RebalanceTimeout)
	ferr := m.sess.Client().Flush(flushCtx)
	cancelFlush()
	perr.mu.Lock()
	if perr.err != nil {
		produceErr = fmt.Errorf("%d records not written, the first: %w", perr.failed, perr.err)
	}
	perr.mu.Unlock()
	if produceErr == nil {
		produceErr = ferr
	}
	try := kgo.TryCommit
	if produceErr != nil || jobErr != nil {
		try = kgo.TryAbort
	}
	endCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.RebalanceTimeout)
	committed, err = m.sess.End(endCtx, try)
	cancel()
	return committed, produceErr, err
}

// work is the goroutine of one partition.
func (s *Stream) work(ctx context.Context, adm *kadm.Client, w *worker) {
	defer close(w.done)
	for j := range w.in {
		s.runJob(ctx, adm, w, j)
		close(j.done)
	}
}

func (s *Stream) stopWorker(w *worker) {
	close(w.in)
	<-w.done
}

func (s *Stream) runJob(ctx context.Context, adm *kadm.Client, w *worker, j *job) {
	if w.sh == nil {
		began := time.Now()
		sh, err := s.restore(ctx, adm, w.part)
		if err != nil {
			j.err = err
			return
		}
		s.m.restoreSecs.Observe(time.Since(began).Seconds())
		s.log.Info("partition state restored", "partition", w.part, "series", len(sh.keys), "state_end", sh.restoredEnd,
			"groups", len(sh.groups), "duration", time.Since(began))
		w.sh = sh
		if w.next, err = s.committed(ctx, adm, w.part); err != nil {
			j.err = err
			return
		}
		if w.next > 0 {
			if err := s.learnRefsBefore(ctx, adm, sh, w.part, w.next); err != nil {
				j.err = err
				return
			}
		}
	}
	sh := w.sh
	if first := j.records[0].Offset; w.next >= 0 && first > w.next {
		// augur.samples is written without transactions, so its offsets
		// have no gaps but the records retention deleted before this
		// partition read them: the consumer resumed at the log start.
		s.m.lost.Add(float64(first - w.next))
		s.log.Warn("augur.samples records deleted by retention before the stream read them: the stream fell further behind than the topic's retention",
			"partition", w.part, "lost", first-w.next, "from", w.next, "to", first)
	}
	w.next = j.records[len(j.records)-1].Offset + 1
	for _, rec := range j.records {
		if err := w.rd.Reset(rec.Value); err != nil {
			sh.stats.badRecords++
			continue
		}
		n := w.rd.NumSamples()
		sh.processBlock(&w.rd)
		if s.cfg.OnProcessed != nil {
			s.cfg.OnProcessed(rec, n)
		}
		s.m.recordDelay.Observe(time.Since(rec.Timestamp).Seconds())
	}
	if n := len(j.records); n > 0 {
		s.m.lag.WithLabelValues(partLabel(w.part)).Set(float64(max(0, j.hwm-j.records[n-1].Offset-1)))
	}
	began := time.Now()
	if s.cfg.StateTrimInterval > 0 && began.Sub(sh.wholeAt) >= s.cfg.StateTrimInterval {
		sh.markAllDirty()
		sh.wholeAt = began
		j.whole = true
	}
	st, err := sh.appendCheckpoint(nil)
	if err != nil {
		j.err = fmt.Errorf("checkpoint partition %d: %w", w.part, err)
		return
	}
	s.m.ckptSeconds.Observe(time.Since(began).Seconds())
	j.state = st
	j.decisions = sh.out
	sh.out = nil
	j.points = sh.points
	sh.points = nil
	s.m.flush(sh)
}

// committed returns the group's committed offset of a samples partition,
// -1 when there is none.
func (s *Stream) committed(ctx context.Context, adm *kadm.Client, part int32) (int64, error) {
	offs, err := adm.FetchOffsets(ctx, s.cfg.Group)
	if err != nil {
		return 0, fmt.Errorf("committed offset of partition %d: %w", part, err)
	}
	if o, ok := offs.Lookup(s.cfg.SamplesTopic, part); ok && o.Err == nil && o.At >= 0 {
		return o.At, nil
	}
	return -1, nil
}

// restore rebuilds a partition's state from augur.state: every committed
// record from the start of the partition to its end, in order.
func (s *Stream) restore(ctx context.Context, adm *kadm.Client, part int32) (*shard, error) {
	c := &s.cfg
	ctx, cancel := context.WithTimeout(ctx, c.RestoreTimeout)
	defer cancel()
	sh := newShard(part, s.env)
	end, err := s.stableEnd(ctx, adm, part)
	if err != nil {
		return nil, err
	}
	if end > 0 {
		// The record at end-1 ends the read. Compaction can remove it (an
		// old tombstone or transaction marker of an idle partition): a
		// fetch below the end that brings nothing for a while means there
		// is nothing left to read.
		var applyErr error
		quiet, err := s.readPartition(ctx, c.StateTopic, part, kgo.NewOffset().AtStart(), end, []kgo.Opt{
			kgo.FetchIsolationLevel(kgo.ReadCommitted()),
			// Control records mark the end of every transaction, so the
			// last offset before the end is always seen.
			kgo.KeepControlRecords(),
		}, func(r *kgo.Record) {
			if !r.Attrs.IsControl() && applyErr == nil {
				if err := sh.apply(r.Key, r.Value); err != nil {
					applyErr = fmt.Errorf("offset %d: %w", r.Offset, err)
				}
			}
		})
		if err != nil {
			return nil, fmt.Errorf("restore partition %d: %w", part, err)
		}
		if quiet {
			s.log.Warn("state restore found nothing more below the end offset, assuming a compacted tail",
				"partition", part, "end", end, "waited", restoreQuiet)
		}
		if applyErr != nil {
			return nil, fmt.Errorf("restore partition %d: %w", part, applyErr)
		}
	}
	sh.finishRestore()
	sh.restoredEnd = end
	return sh, nil
}

// learnRefsBefore reads the series numbers that the records of a samples
// partition from offset next on may refer to and that were defined before
// it: the records from proto.SeriesRefMaxAge (and refMargin) before the one
// at next-1, by record timestamp, up to next (proto/block.go, "Series
// references"). Their samples were applied before the restored checkpoint.
func (s *Stream) learnRefsBefore(ctx context.Context, adm *kadm.Client, sh *shard, part int32, next int64) error {
	began := time.Now()
	ctx, cancel := context.WithTimeout(ctx, s.cfg.RestoreTimeout)
	defer cancel()
	var last *kgo.Record
	if _, err := s.readPartition(ctx, s.cfg.SamplesTopic, part, kgo.NewOffset().At(next-1), next, nil, func(r *kgo.Record) { last = r }); err != nil {
		return err
	}
	if last == nil {
		return nil // retention deleted it: the stream reads from the log start
	}
	t := last.Timestamp.Add(-(proto.SeriesRefMaxAge + refMargin)).UnixMilli()
	offs, err := adm.ListOffsetsAfterMilli(ctx, t, s.cfg.SamplesTopic)
	if err != nil {
		return fmt.Errorf("series definitions of partition %d: %w", part, err)
	}
	o, ok := offs.Lookup(s.cfg.SamplesTopic, part)
	if !ok {
		return fmt.Errorf("series definitions of partition %d: no offset for %s", part, time.UnixMilli(t).UTC())
	}
	if o.Err != nil {
		return fmt.Errorf("series definitions of partition %d: offset for %s: %w", part, time.UnixMilli(t).UTC(), o.Err)
	}
	var rd proto.BlockReader
	records := 0
	_, err = s.readPartition(ctx, s.cfg.SamplesTopic, part, kgo.NewOffset().At(min(o.Offset, next-1)), next, nil, func(r *kgo.Record) {
		records++
		if rd.Reset(r.Value) == nil {
			sh.learnRefs(&rd)
		}
	})
	s.log.Info("series definitions read", "partition", part, "records", records, "before", next, "duration", time.Since(began))
	return err
}

// refMargin is how much earlier than proto.SeriesRefMaxAge before the
// committed offset's record learnRefsBefore begins: records of different
// receivers reach a partition in an order their timestamps need not follow.
const refMargin = 15 * time.Second

// readPartition calls fn for each record of a topic partition from `from`
// up to offset until (exclusive), in order, with opts added to the stream's
// client options. A fetch that brings nothing for restoreQuiet ends the
// read early (compaction or retention removed what is left below until):
// it then returns quiet.
func (s *Stream) readPartition(ctx context.Context, topic string, part int32, from kgo.Offset, until int64, opts []kgo.Opt, fn func(*kgo.Record)) (quiet bool, err error) {
	c := &s.cfg
	cl, err := kgo.NewClient(append(append([]kgo.Opt{
		kgo.SeedBrokers(c.Brokers...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {part: from}}),
	}, opts...), c.ClientOpts...)...)
	if err != nil {
		return false, fmt.Errorf("read %s partition %d: %w", topic, part, err)
	}
	defer cl.Close()
	for done := false; !done; {
		pctx, cancel := context.WithTimeout(ctx, restoreQuiet)
		fs := cl.PollFetches(pctx)
		cancel()
		if err := ctx.Err(); err != nil {
			return false, fmt.Errorf("read %s partition %d up to offset %d: %w", topic, part, until, err)
		}
		if fs.NumRecords() == 0 && errors.Is(pctx.Err(), context.DeadlineExceeded) {
			return true, nil
		}
		fs.EachRecord(func(r *kgo.Record) {
			if done || r.Offset >= until {
				done = true
				return
			}
			fn(r)
			done = r.Offset >= until-1
		})
	}
	return false, nil
}

// restoreQuiet is how long a restore waits for more records below the end
// offset before deciding compaction removed them. Long, so that a slow
// broker is not mistaken for a compacted tail.
const restoreQuiet = 10 * time.Second

// stableEnd waits until no transaction is open on the state partition and
// returns its end offset. Only a member that died mid-transaction can hold
// one open (the previous owner ended its transaction before the partition
// moved); the broker aborts it after the transaction timeout.
func (s *Stream) stableEnd(ctx context.Context, adm *kadm.Client, part int32) (int64, error) {
	t := s.cfg.StateTopic
	for {
		hw, err := adm.ListEndOffsets(ctx, t)
		if err == nil {
			var lso kadm.ListedOffsets
			lso, err = adm.ListCommittedOffsets(ctx, t)
			if err == nil {
				h, ok1 := hw.Lookup(t, part)
				l, ok2 := lso.Lookup(t, part)
				switch {
				case !ok1 || !ok2:
					err = fmt.Errorf("state topic %s has no partition %d", t, part)
				case h.Err != nil:
					err = h.Err
				case l.Err != nil:
					err = l.Err
				case h.Offset == l.Offset:
					return h.Offset, nil
				}
			}
		}
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("restore partition %d: wait for stable end of %s: %w (last: %w)", part, t, ctx.Err(), err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (s *Stream) onAssigned(_ context.Context, _ *kgo.Client, m map[string][]int32) {
	ps := m[s.cfg.SamplesTopic]
	if len(ps) == 0 {
		return
	}
	s.log.Info("partitions assigned", "partitions", ps)
	// A partition assigned now starts from augur.state even if this
	// member still holds a worker for it: franz-go's transactional session
	// passes on only the first revocation between two transactions, so a
	// partition taken away again while the member was idle went unnoticed,
	// and when it came back its stale shard (another member had processed
	// it meanwhile) made wrong decisions and checkpoints.
	s.mu.Lock()
	s.dropped = append(s.dropped, ps...)
	s.mu.Unlock()
}

func (s *Stream) onDropped(how string) func(context.Context, *kgo.Client, map[string][]int32) {
	return func(_ context.Context, _ *kgo.Client, m map[string][]int32) {
		ps := m[s.cfg.SamplesTopic]
		if len(ps) == 0 {
			return
		}
		s.log.Info("partitions changed", "change", how, "partitions", ps)
		s.mu.Lock()
		s.dropped = append(s.dropped, ps...)
		s.mu.Unlock()
	}
}

// releaseDropped stops the goroutines of partitions no longer owned and
// forgets their state (a new owner restores it from augur.state). It
// returns those partitions.
func (s *Stream) releaseDropped(workers map[int32]*worker) []int32 {
	s.mu.Lock()
	d := s.dropped
	s.dropped = nil
	s.mu.Unlock()
	for _, p := range d {
		if w := workers[p]; w != nil {
			s.stopWorker(w)
			delete(workers, p)
		}
		s.m.forget(p)
	}
	return d
}

// forgetPartitions removes the records of topic's partitions parts from fs.
func forgetPartitions(fs kgo.Fetches, topic string, parts []int32) {
	for i := range fs {
		for t := range fs[i].Topics {
			ft := &fs[i].Topics[t]
			if ft.Topic != topic {
				continue
			}
			for p := range ft.Partitions {
				if slices.Contains(parts, ft.Partitions[p].Partition) {
					ft.Partitions[p].Records = nil
				}
			}
		}
	}
}

// partitioner sends state records to the partition they name (the samples
// partition they checkpoint) and keys everything else like Kafka's default.
type partitioner struct{ state string }

func (p partitioner) ForTopic(t string) kgo.TopicPartitioner {
	if t == p.state {
		return kgo.ManualPartitioner().ForTopic(t)
	}
	return kgo.StickyKeyPartitioner(nil).ForTopic(t)
}

// forecastsTopic returns the topic forecast points go to, "" for none: a
// missing topic (a cluster set up before it existed, created by hand
// without it) must not make every transaction abort, so the stream then
// writes none and says so.
func (s *Stream) forecastsTopic(ctx context.Context, adm *kadm.Client) string {
	t := s.cfg.ForecastsTopic
	if t == "-" {
		return ""
	}
	// A topic just created (EnsureTopics) takes a moment to reach every
	// broker's metadata: it is asked for again for up to 10 s.
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for {
		td, err := adm.ListTopics(ctx, t)
		if err == nil {
			if d, ok := td[t]; ok && d.Err == nil {
				return t
			}
		}
		select {
		case <-ctx.Done():
			s.log.Warn("forecasts topic missing: no forecast points are written", "topic", t, "err", err)
			return ""
		case <-time.After(250 * time.Millisecond):
		}
	}
}
