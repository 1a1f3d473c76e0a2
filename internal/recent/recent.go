// Package recent keeps a bounded, read-committed tail of augur.decisions
// and augur.actions in memory and serves it as JSON:
//
//	GET /api/v1/decisions  newest first, each with the audit records of it
//	GET /api/v1/actions    newest first
//	GET /api/v1/forecasts  ?rule=NAME (required): the rule's forecast
//	                       points (proto.ForecastPoint), oldest first
//	GET /api/v1/rules      the rules of the decisions and points held, with
//	                       the kinds of their decisions, and the tail's size
//	                       (the largest limit)
//
// Query parameters (optional but for forecasts' rule): rule, kind, target
// (exact matches), since and until (RFC 3339 or unix milliseconds, on the
// decision's creation time, the action's time or the window's end), limit
// (1..Config.Size, default 100; forecasts return the newest limit). A bad parameter is a 400 naming it. It reads the topics like any
// consumer, so any process that can read them can serve it: `augur run`
// on its listener, `augur act` on its metrics address.
package recent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/augur-ops/augur/proto"
)

// Config configures a Tail.
type Config struct {
	// DecisionsTopic, ActionsTopic and ForecastsTopic are read. Defaults
	// augur.decisions, augur.actions and augur.forecasts.
	DecisionsTopic, ActionsTopic, ForecastsTopic string
	// Size is how many decisions, how many actions, and how many forecast
	// points per rule are kept (the oldest go first). Default 1000.
	Size int
	// Lookback is how far back the topics are read at start. Default 1h.
	Lookback time.Duration
}

func (c *Config) defaults() {
	if c.DecisionsTopic == "" {
		c.DecisionsTopic = "augur.decisions"
	}
	if c.ActionsTopic == "" {
		c.ActionsTopic = "augur.actions"
	}
	if c.ForecastsTopic == "" {
		c.ForecastsTopic = "augur.forecasts"
	}
	if c.Size <= 0 {
		c.Size = 1000
	}
	if c.Lookback <= 0 {
		c.Lookback = time.Hour
	}
}

// Tail is the in-memory tail. Create it with New, feed it with Run (or
// Add), serve it with ServeHTTP. Safe for concurrent use.
type Tail struct {
	cfg Config
	log *slog.Logger

	mu        sync.RWMutex
	decisions []entry // by time, oldest first (insert)
	actions   []entry
	byID      map[string]*joined // decision id -> its audit records
	points    map[string]*ring   // rule -> its forecast points
}

// joined is the audit records of one decision id, oldest first, and how
// many entries of the tails (the decision, its actions) carry the id: the
// join is forgotten when none is held any more, so it holds at most the
// ids of 2 × Size entries. (Forgotten only with the decision, the records
// of a decision that had left the tail, an expiry or a step arriving
// after newer decisions pushed it out, stayed for ever.)
type joined struct {
	recs []json.RawMessage
	refs int
}

// ref counts one more entry held with id (the caller holds t.mu).
func (t *Tail) ref(id string) *joined {
	j := t.byID[id]
	if j == nil {
		j = &joined{}
		t.byID[id] = j
	}
	j.refs++
	return j
}

// unref counts one entry with id less, dropping the join at none (the
// caller holds t.mu).
func (t *Tail) unref(id string) {
	if j := t.byID[id]; j != nil {
		if j.refs--; j.refs <= 0 {
			delete(t.byID, id)
		}
	}
}

// ring is a bounded list of entries by time (insert).
type ring struct {
	entries []entry
}

// maxRules bounds the rules whose forecast points are kept.
const maxRules = 1000

// entry is one record: its JSON as on the topic and what filters read.
type entry struct {
	raw          json.RawMessage
	point        *proto.ForecastPoint // decoded, forecast points only
	id, rule     string
	kind, target string
	at           time.Time
}

// New returns an empty Tail.
func New(cfg Config, log *slog.Logger) *Tail {
	cfg.defaults()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Tail{cfg: cfg, log: log, byID: map[string]*joined{}, points: map[string]*ring{}}
}

// Options are the kgo options Run needs besides the connection: both
// topics, read committed, from Lookback ago.
func (t *Tail) Options() []kgo.Opt {
	return []kgo.Opt{
		kgo.ConsumeTopics(t.cfg.DecisionsTopic, t.cfg.ActionsTopic, t.cfg.ForecastsTopic),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AfterMilli(time.Now().Add(-t.cfg.Lookback).UnixMilli())),
	}
}

// Run reads cl (built with Options) into the tail until ctx ends. Records
// that do not decode are skipped.
func (t *Tail) Run(ctx context.Context, cl *kgo.Client) error {
	for {
		fs := cl.PollFetches(ctx)
		if fs.IsClientClosed() || ctx.Err() != nil {
			return nil
		}
		fs.EachError(func(topic string, p int32, err error) {
			if !errors.Is(err, context.Canceled) {
				t.log.Warn("fetch recent records", "topic", topic, "partition", p, "err", err)
			}
		})
		fs.EachRecord(func(r *kgo.Record) { t.Add(r.Topic, r.Value) })
	}
}

// Add takes one record value of topic.
func (t *Tail) Add(topic string, value []byte) {
	switch topic {
	case t.cfg.DecisionsTopic:
		d, err := proto.UnmarshalDecision(value)
		if err != nil {
			return
		}
		e := entry{raw: clone(value), id: d.GetId(), rule: d.GetRule(), kind: d.GetKind(), target: d.GetTarget(), at: d.GetCreatedAt().AsTime()}
		t.mu.Lock()
		t.ref(e.id)
		if old, full := insert(&t.decisions, e, t.cfg.Size); full {
			t.unref(old.id)
		}
		t.mu.Unlock()
	case t.cfg.ActionsTopic:
		a, err := proto.UnmarshalAction(value)
		if err != nil {
			return
		}
		e := entry{raw: clone(value), id: a.GetDecisionId(), kind: a.GetKind(), target: a.GetTarget(), at: a.GetAt().AsTime()}
		t.mu.Lock()
		if j := t.ref(e.id); len(j.recs) < maxActionsPerDecision {
			j.recs = append(j.recs, e.raw)
		}
		if old, full := insert(&t.actions, e, t.cfg.Size); full {
			t.unref(old.id)
		}
		t.mu.Unlock()
	case t.cfg.ForecastsTopic:
		p, err := proto.UnmarshalForecastPoint(value)
		if err != nil {
			return
		}
		e := entry{raw: clone(value), point: p, rule: p.Rule, target: p.Target, at: time.UnixMilli(p.WindowEnd)}
		t.mu.Lock()
		r := t.points[p.Rule]
		if r == nil && len(t.points) < maxRules {
			r = &ring{}
			t.points[p.Rule] = r
		}
		if r != nil {
			insert(&r.entries, e, t.cfg.Size)
		}
		t.mu.Unlock()
	}
}

// Forecasts returns the forecast points held for rule, oldest first, and
// the creation times of the rule's decisions held, oldest first.
func (t *Tail) Forecasts(rule string) ([]proto.ForecastPoint, []time.Time) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	var pts []proto.ForecastPoint
	if r := t.points[rule]; r != nil {
		newestFirst(r.entries, func(e *entry) bool {
			pts = append(pts, *e.point)
			return true
		})
	}
	slices.Reverse(pts)
	var at []time.Time
	newestFirst(t.decisions, func(e *entry) bool {
		if e.rule == rule {
			at = append(at, e.at)
		}
		return true
	})
	slices.Reverse(at)
	return pts, at
}

// ruleView is a rule seen in the tail: the kinds of its decisions and how
// many forecast points it has.
type ruleView struct {
	Name      string   `json:"name"`
	Kinds     []string `json:"kinds"`
	Forecasts int      `json:"forecast_points"`
}

// rules lists the rules of the decisions and forecast points held, by
// name. The caller holds t.mu.
func (t *Tail) rules() []ruleView {
	byName := map[string]*ruleView{}
	get := func(name string) *ruleView {
		v := byName[name]
		if v == nil {
			v = &ruleView{Name: name, Kinds: []string{}}
			byName[name] = v
		}
		return v
	}
	for i := range t.decisions {
		e := &t.decisions[i]
		if e.rule == "" {
			continue
		}
		v := get(e.rule)
		if !slices.Contains(v.Kinds, e.kind) {
			v.Kinds = append(v.Kinds, e.kind)
		}
	}
	for name, r := range t.points {
		get(name).Forecasts = len(r.entries)
	}
	out := make([]ruleView, 0, len(byName))
	for _, v := range byName {
		slices.Sort(v.Kinds)
		out = append(out, *v)
	}
	slices.SortFunc(out, func(a, b ruleView) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// records returns a copy of the audit records joined to decision id (the
// caller holds t.mu).
func (t *Tail) records(id string) []json.RawMessage {
	out := []json.RawMessage{}
	if j := t.byID[id]; j != nil {
		out = append(out, j.recs...)
	}
	return out
}

// maxActionsPerDecision bounds the audit records joined to one decision
// (a decision in force gets one per step).
const maxActionsPerDecision = 32

func clone(b []byte) json.RawMessage { return append(json.RawMessage(nil), b...) }

// insert adds e to r, kept by time oldest first and at most size long,
// and returns the entry dropped to make room (the oldest, or e itself when
// it is older than all of them). Records come partition by partition
// (after a restart, each partition's last hour in turn): kept in arrival
// order, newest-first answers showed one partition's records and a full
// tail dropped the newest of others.
func insert(r *[]entry, e entry, size int) (entry, bool) {
	s := *r
	i := len(s)
	for i > 0 && s[i-1].at.After(e.at) {
		i--
	}
	if len(s) < size {
		s = append(s, entry{})
		copy(s[i+1:], s[i:])
		s[i] = e
		*r = s
		return entry{}, false
	}
	if i == 0 {
		return e, true
	}
	old := s[0]
	copy(s, s[1:i])
	s[i-1] = e
	return old, true
}

// query is a parsed request.
type query struct {
	rule, kind, target string
	since, until       time.Time
	limit              int
}

func (t *Tail) parse(r *http.Request) (query, error) {
	q := query{limit: 100}
	v := r.URL.Query()
	for k := range v {
		switch k {
		case "rule", "kind", "target", "since", "until", "limit":
		default:
			return q, fmt.Errorf("unknown parameter %q (rule, kind, target, since, until, limit)", k)
		}
	}
	q.rule, q.kind, q.target = v.Get("rule"), v.Get("kind"), v.Get("target")
	if q.kind != "" && !validKind(q.kind) {
		return q, fmt.Errorf("kind %q: not a decision kind %v", q.kind, proto.Kinds)
	}
	var err error
	if q.since, err = parseTime("since", v.Get("since")); err != nil {
		return q, err
	}
	if q.until, err = parseTime("until", v.Get("until")); err != nil {
		return q, err
	}
	if !q.since.IsZero() && !q.until.IsZero() && q.until.Before(q.since) {
		return q, errors.New("until is before since")
	}
	if s := v.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > t.cfg.Size {
			return q, fmt.Errorf("limit %q: want an integer in [1, %d]", s, t.cfg.Size)
		}
		q.limit = n
	}
	return q, nil
}

func validKind(k string) bool {
	for _, x := range proto.Kinds {
		if x == k {
			return true
		}
	}
	return false
}

func parseTime(name, s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if ms, err := strconv.ParseInt(s, 10, 64); err == nil {
		return time.UnixMilli(ms), nil
	}
	ts, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%s %q: want RFC 3339 or unix milliseconds", name, s)
	}
	return ts, nil
}

func (q *query) match(e *entry, rule string) bool {
	return (q.rule == "" || rule == q.rule) && (q.kind == "" || e.kind == q.kind) && (q.target == "" || e.target == q.target) &&
		(q.since.IsZero() || !e.at.Before(q.since)) && (q.until.IsZero() || !e.at.After(q.until))
}

// decisionView is one decision with its audit records.
type decisionView struct {
	Decision json.RawMessage   `json:"decision"`
	Actions  []json.RawMessage `json:"actions"`
}

// ServeHTTP serves /api/v1/decisions, /api/v1/actions, /api/v1/forecasts
// and /api/v1/rules.
func (t *Tail) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		http.Error(w, "method not allowed: use GET", http.StatusMethodNotAllowed)
		return
	}
	q, err := t.parse(r)
	if err != nil {
		http.Error(w, "bad query: "+err.Error(), http.StatusBadRequest)
		return
	}
	var out any
	t.mu.RLock()
	switch r.URL.Path {
	case "/api/v1/decisions":
		list := []decisionView{}
		newestFirst(t.decisions, func(e *entry) bool {
			if q.match(e, e.rule) {
				list = append(list, decisionView{Decision: e.raw, Actions: t.records(e.id)})
			}
			return len(list) < q.limit
		})
		out = map[string]any{"decisions": list}
	case "/api/v1/forecasts":
		if q.rule == "" || q.kind != "" {
			t.mu.RUnlock()
			http.Error(w, "bad query: forecasts need rule=NAME and take no kind", http.StatusBadRequest)
			return
		}
		list := []json.RawMessage{}
		if r := t.points[q.rule]; r != nil {
			newestFirst(r.entries, func(e *entry) bool {
				if q.match(e, e.rule) {
					list = append(list, e.raw)
				}
				return len(list) < q.limit
			})
		}
		slices.Reverse(list) // oldest first, as a chart reads them
		out = map[string]any{"rule": q.rule, "points": list}
	case "/api/v1/rules":
		out = map[string]any{"rules": t.rules(), "tail_size": t.cfg.Size}
	case "/api/v1/actions":
		if q.rule != "" {
			t.mu.RUnlock()
			http.Error(w, "bad query: rule filters decisions only", http.StatusBadRequest)
			return
		}
		list := []json.RawMessage{}
		newestFirst(t.actions, func(e *entry) bool {
			if q.match(e, "") {
				list = append(list, e.raw)
			}
			return len(list) < q.limit
		})
		out = map[string]any{"actions": list}
	default:
		t.mu.RUnlock()
		http.NotFound(w, r)
		return
	}
	b, err := json.Marshal(out)
	t.mu.RUnlock()
	if err != nil {
		http.Error(w, "encode: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(b)
}

// newestFirst calls f on r's entries, newest first, until f returns false.
func newestFirst(r []entry, f func(*entry) bool) {
	for i := len(r) - 1; i >= 0; i-- {
		if !f(&r[i]) {
			return
		}
	}
}
