package proto

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math"

	"google.golang.org/protobuf/encoding/protojson"
	gproto "google.golang.org/protobuf/proto"
)

// Decision kinds, the closed set of values of Decision.Kind.
const (
	KindScale            = "scale"
	KindReserveCapacity  = "reserve_capacity"
	KindSetHPAMin        = "set_hpa_min"
	KindTaintNode        = "taint_node"
	KindUntaintNode      = "untaint_node"
	KindZonalShift       = "zonal_shift"
	KindCancelZonalShift = "cancel_zonal_shift"
	KindAlert            = "alert"
)

// Kinds lists every decision kind, for validation and bounded metric labels.
var Kinds = []string{KindScale, KindReserveCapacity, KindSetHPAMin, KindTaintNode,
	KindUntaintNode, KindZonalShift, KindCancelZonalShift, KindAlert}

// Action outcomes, the closed set of values of Action.Outcome.
const (
	OutcomeApplied         = "applied"
	OutcomeDryRun          = "dry_run"
	OutcomeRefused         = "refused"
	OutcomeExpired         = "expired"
	OutcomeDuplicate       = "duplicate"
	OutcomeFailed          = "failed"
	OutcomePendingApproval = "pending_approval"
	OutcomeNoop            = "noop"
	// OutcomeDeferred: a timing guardrail (cooldown, scale-down
	// stabilization, rate limit) held the decision back; in enforce mode it
	// stays in force and is tried again until it expires.
	OutcomeDeferred = "deferred"
)

// Outcomes lists every action outcome, for bounded metric labels.
var Outcomes = []string{OutcomeApplied, OutcomeDryRun, OutcomeRefused, OutcomeExpired,
	OutcomeDuplicate, OutcomeFailed, OutcomePendingApproval, OutcomeNoop, OutcomeDeferred}

// ErrBadSignature is returned by Verify when a decision's signature does not
// match its content under the key.
var ErrBadSignature = errors.New("decision signature does not match")

// DecisionID returns the deterministic id of a decision: the hex SHA-256 of
// its rule, kind, target, desired change and the window end (unix
// milliseconds). The same inputs always give the same id.
func DecisionID(rule, kind, target string, desired *Change, windowEndMs int64) string {
	h := sha256.New()
	for _, s := range []string{rule, kind, target} {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(s)))
		h.Write(n[:])
		h.Write([]byte(s))
	}
	b, _ := gproto.MarshalOptions{Deterministic: true}.Marshal(desired) // a Change always marshals
	h.Write(b)
	var ts [8]byte
	binary.BigEndian.PutUint64(ts[:], uint64(windowEndMs))
	h.Write(ts[:])
	return hex.EncodeToString(h.Sum(nil))
}

// signedBytes is the canonical byte string a signature covers: the
// deterministic protobuf encoding of d with Signature empty.
func signedBytes(d *Decision) ([]byte, error) {
	c := gproto.Clone(d).(*Decision)
	c.Signature = ""
	b, err := gproto.MarshalOptions{Deterministic: true}.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("marshal decision %s: %w", d.GetId(), err)
	}
	return b, nil
}

// Sign sets d.Signature to the hex HMAC-SHA256 of its canonical bytes.
func Sign(d *Decision, key []byte) error {
	b, err := signedBytes(d)
	if err != nil {
		return err
	}
	m := hmac.New(sha256.New, key)
	m.Write(b)
	d.Signature = hex.EncodeToString(m.Sum(nil))
	return nil
}

// KeyFingerprint returns the first 8 hex digits of the SHA-256 of a
// decision key: what augur stream, augur act and augur run log at start, so
// that the key a signer and a verifier loaded can be compared without
// showing it.
func KeyFingerprint(key []byte) string {
	sum := sha256.Sum256(key)
	return hex.EncodeToString(sum[:4])
}

// Verify checks d.Signature against its content under key. It returns
// ErrBadSignature when they do not match.
func Verify(d *Decision, key []byte) error {
	got, err := hex.DecodeString(d.GetSignature())
	if err != nil || len(got) != sha256.Size {
		return ErrBadSignature
	}
	b, err := signedBytes(d)
	if err != nil {
		return err
	}
	m := hmac.New(sha256.New, key)
	m.Write(b)
	if !hmac.Equal(got, m.Sum(nil)) {
		return ErrBadSignature
	}
	return nil
}

// jsonOpts is the canonical JSON mapping used on the topics: lowerCamelCase
// field names, and fields at their zero value left out (a reader treats a
// missing field as zero, as protobuf does).
var jsonOpts = protojson.MarshalOptions{EmitUnpopulated: false, UseProtoNames: false}

// MarshalJSON encodes m (a Decision or an Action) in protobuf's canonical
// JSON mapping, as written to augur.decisions and augur.actions.
func MarshalJSON(m gproto.Message) ([]byte, error) {
	return jsonOpts.Marshal(m)
}

// UnmarshalDecision decodes a record value of augur.decisions. Unknown fields
// are an error so that a schema mismatch is noticed, not ignored.
func UnmarshalDecision(b []byte) (*Decision, error) {
	d := &Decision{}
	if err := protojson.Unmarshal(b, d); err != nil {
		return nil, fmt.Errorf("decode decision: %w", err)
	}
	return d, nil
}

// UnmarshalAction decodes a record value of augur.actions.
func UnmarshalAction(b []byte) (*Action, error) {
	a := &Action{}
	if err := protojson.Unmarshal(b, a); err != nil {
		return nil, fmt.Errorf("decode action: %w", err)
	}
	return a, nil
}

// FiniteDecision replaces NaN and infinities in d's confidence and evidence
// by 0 (Finite): whatever number a detector computed, a reader of
// augur.decisions never gets the string "NaN" where it expects a number.
func FiniteDecision(d *Decision) {
	d.Confidence = Finite(d.Confidence)
	ev := d.GetEvidence()
	if ev == nil {
		return
	}
	for _, f := range []*float64{&ev.HorizonSeconds, &ev.Forecast, &ev.Lower, &ev.Upper, &ev.Accuracy,
		&ev.Observed, &ev.CapacityPerPod, &ev.BandLower, &ev.BandUpper, &ev.Score} {
		*f = Finite(*f)
	}
	for _, m := range []map[string]float64{ev.Peers, ev.Values} {
		for k, v := range m {
			m[k] = Finite(v)
		}
	}
}

// Finite replaces NaN and infinities by 0 so that evidence always encodes in
// JSON (protojson writes them as strings, which readers rarely expect).
func Finite(v float64) float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return 0
	}
	return v
}
