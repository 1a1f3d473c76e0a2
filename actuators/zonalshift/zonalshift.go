// Package zonalshift is the AWS ARC zonal-shift executor of augur's
// actuators: it starts a zonal shift away from one availability zone (by AZ
// ID, always with an expiry, with the decision id in the comment), extends
// augur's own shift when asked again, and cancels it on recovery. Shifts
// started by anyone else are never touched: a decision that meets one is
// refused and audited.
package zonalshift

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/arczonalshift"
	"github.com/aws/aws-sdk-go-v2/service/arczonalshift/types"

	"github.com/augur-ops/augur/actuators"
	"github.com/augur-ops/augur/proto"
)

// Config configures the Executor.
type Config struct {
	// CommentPrefix starts the comment of every shift augur starts; a shift
	// whose comment starts with it is augur's. Default "augur decision ".
	CommentPrefix string
	// ExtendBelow: an existing augur shift away from the same zone is
	// extended when less than this share of the requested expiry remains;
	// otherwise the decision is a no-op. Default 0.5.
	ExtendBelow float64
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// DefaultConfig returns the defaults documented on Config.
func DefaultConfig() Config {
	return Config{CommentPrefix: "augur decision ", ExtendBelow: 0.5, Now: time.Now}
}

// Validate reports the first invalid field.
func (c *Config) Validate() error {
	if c.CommentPrefix == "" || c.Now == nil || c.ExtendBelow <= 0 || c.ExtendBelow > 1 {
		return errors.New("zonal shift executor: comment prefix, clock and extend share in (0,1] are required")
	}
	return nil
}

// NewClient returns an ARC zonal-shift client for cfg whose retryer retries
// throttling and transient errors up to 6 attempts with jittered
// exponential backoff (at most 20s between attempts). optFns can set
// BaseEndpoint (a local server in tests) or override the retryer.
func NewClient(cfg aws.Config, optFns ...func(*arczonalshift.Options)) *arczonalshift.Client {
	base := []func(*arczonalshift.Options){func(o *arczonalshift.Options) {
		o.Retryer = retry.NewStandard(func(so *retry.StandardOptions) {
			so.MaxAttempts = 6
			so.MaxBackoff = 20 * time.Second
		})
	}}
	return arczonalshift.NewFromConfig(cfg, append(base, optFns...)...)
}

// Executor carries out zonal_shift and cancel_zonal_shift decisions. It
// implements actuators.Executor.
type Executor struct {
	cfg Config
	c   *arczonalshift.Client
	m   *actuators.APIMetrics
	log *slog.Logger
}

// New returns an Executor using c. m may be nil.
func New(cfg Config, c *arczonalshift.Client, m *actuators.APIMetrics, log *slog.Logger) (*Executor, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Executor{cfg: cfg, c: c, m: m, log: log}, nil
}

func (e *Executor) call(op string, f func() error) error {
	start := time.Now()
	err := f()
	e.m.Observe("arc", op, start, err)
	return err
}

func (e *Executor) ours(comment *string) bool {
	return strings.HasPrefix(aws.ToString(comment), e.cfg.CommentPrefix)
}

// resource reads the zones (AZ IDs, the keys of the applied weights) and
// active zonal shifts of a managed resource.
func (e *Executor) resource(ctx context.Context, id string) (zones []string, shifts []actuators.Shift, err error) {
	var out *arczonalshift.GetManagedResourceOutput
	err = e.call("get_managed_resource", func() (err error) {
		out, err = e.c.GetManagedResource(ctx, &arczonalshift.GetManagedResourceInput{ResourceIdentifier: aws.String(id)})
		return err
	})
	if err != nil {
		return nil, nil, mapErr("get managed resource", err)
	}
	for z := range out.AppliedWeights {
		zones = append(zones, z)
	}
	slices.Sort(zones)
	for _, s := range out.ZonalShifts {
		shifts = append(shifts, actuators.Shift{ID: aws.ToString(s.ZonalShiftId), AwayFrom: aws.ToString(s.AwayFrom),
			Expiry: aws.ToTime(s.ExpiryTime), Ours: e.ours(s.Comment)})
	}
	return zones, shifts, nil
}

// mapErr maps ARC errors: validation and access errors are final
// failures, a conflict that survives here is a refusal.
func mapErr(op string, err error) error {
	var ce *types.ConflictException
	if errors.As(err, &ce) {
		return actuators.Refuse(actuators.GuardZonalForeignShift, "%s: conflicting zonal shift %s: %s", op, aws.ToString(ce.ZonalShiftId), aws.ToString(ce.Message))
	}
	var ad *types.AccessDeniedException
	if errors.As(err, &ad) {
		return actuators.Refuse(actuators.GuardForbidden, "%s: %s", op, aws.ToString(ad.Message))
	}
	var nf *types.ResourceNotFoundException
	if errors.As(err, &nf) {
		return fmt.Errorf("%s: %w: %s", op, actuators.ErrNotFound, aws.ToString(nf.Message))
	}
	return fmt.Errorf("%s: %w", op, err)
}

func state(zones []string, shifts []actuators.Shift) map[string]string {
	var ss []string
	for _, s := range shifts {
		owner := "other"
		if s.Ours {
			owner = "augur"
		}
		ss = append(ss, fmt.Sprintf("%s away from %s until %s (%s)", s.ID, s.AwayFrom, s.Expiry.UTC().Format(time.RFC3339), owner))
	}
	return map[string]string{"zones": strings.Join(zones, ","), "shifts": strings.Join(ss, "; ")}
}

// Observe implements actuators.Executor. A shift on the resource that augur
// did not start refuses the decision (guardrail zonal_foreign_shift): augur
// never shifts on top of, extends or cancels someone else's shift.
func (e *Executor) Observe(ctx context.Context, d *proto.Decision) (actuators.Observation, error) {
	zs := d.GetDesired().GetZonalShift()
	zones, shifts, err := e.resource(ctx, zs.GetResourceIdentifier())
	if err != nil {
		return actuators.Observation{}, err
	}
	obs := actuators.Observation{Kind: "ZonalShift", Zones: zones, Shifts: shifts, Before: state(zones, shifts)}
	switch d.GetKind() {
	case proto.KindZonalShift:
		for _, s := range shifts {
			if !s.Ours {
				return obs, actuators.Refuse(actuators.GuardZonalForeignShift, "zonal shift %s away from %s was not started by augur", s.ID, s.AwayFrom)
			}
			if s.AwayFrom == zs.GetAwayFrom() {
				want := time.Duration(zs.GetExpiresInSeconds()) * time.Second
				obs.Holds = s.Expiry.Sub(e.cfg.Now()) >= time.Duration(float64(want)*e.cfg.ExtendBelow)
			}
		}
	case proto.KindCancelZonalShift:
		obs.Holds = true
		for _, s := range shifts {
			if s.Ours && (zs.GetAwayFrom() == "" || s.AwayFrom == zs.GetAwayFrom()) {
				obs.Holds = false
			}
		}
	default:
		return obs, fmt.Errorf("zonal shift executor: kind %q not handled", d.GetKind())
	}
	return obs, nil
}

// expiresIn formats an ARC expiry: minutes up to a day, else hours.
func expiresIn(sec int64) string {
	m := (sec + 59) / 60
	if m <= 1440 {
		return fmt.Sprintf("%dm", m)
	}
	return fmt.Sprintf("%dh", (m+59)/60)
}

// Apply implements actuators.Executor. ARC has no dry-run: in dry-run mode
// nothing is sent and the intended state is returned.
func (e *Executor) Apply(ctx context.Context, d *proto.Decision, obs actuators.Observation, dry bool) (map[string]string, error) {
	zs := d.GetDesired().GetZonalShift()
	res := zs.GetResourceIdentifier()
	comment := e.cfg.CommentPrefix + d.GetId()
	if d.GetKind() == proto.KindCancelZonalShift {
		for _, s := range obs.Shifts {
			if !s.Ours || (zs.GetAwayFrom() != "" && s.AwayFrom != zs.GetAwayFrom()) {
				continue
			}
			if dry {
				return map[string]string{"would_cancel": s.ID}, nil
			}
			err := e.call("cancel_zonal_shift", func() error {
				_, err := e.c.CancelZonalShift(ctx, &arczonalshift.CancelZonalShiftInput{ZonalShiftId: aws.String(s.ID)})
				return err
			})
			var nf *types.ResourceNotFoundException
			if err != nil && !errors.As(err, &nf) { // already gone: the state holds
				return nil, mapErr("cancel zonal shift", err)
			}
		}
		return e.after(ctx, res)
	}
	exp := expiresIn(zs.GetExpiresInSeconds())
	if dry {
		return map[string]string{"would_shift_away_from": zs.GetAwayFrom(), "expires_in": exp, "comment": comment}, nil
	}
	for _, s := range obs.Shifts {
		if s.Ours && s.AwayFrom == zs.GetAwayFrom() {
			return e.extend(ctx, s.ID, exp, comment, res)
		}
	}
	err := e.call("start_zonal_shift", func() error {
		_, err := e.c.StartZonalShift(ctx, &arczonalshift.StartZonalShiftInput{
			ResourceIdentifier: aws.String(res), AwayFrom: aws.String(zs.GetAwayFrom()),
			ExpiresIn: aws.String(exp), Comment: aws.String(comment),
		})
		return err
	})
	var ce *types.ConflictException
	if errors.As(err, &ce) {
		// Someone started a shift between Observe and now (possibly
		// another augur replica). Ours and away from the same zone:
		// extend it; otherwise refuse.
		_, shifts, rerr := e.resource(ctx, res)
		if rerr != nil {
			return nil, rerr
		}
		for _, s := range shifts {
			if s.ID == aws.ToString(ce.ZonalShiftId) || ce.ZonalShiftId == nil {
				if s.Ours && s.AwayFrom == zs.GetAwayFrom() {
					return e.extend(ctx, s.ID, exp, comment, res)
				}
				return nil, actuators.Refuse(actuators.GuardZonalForeignShift, "conflicting zonal shift %s away from %s (augur's: %v)", s.ID, s.AwayFrom, s.Ours)
			}
		}
		return nil, mapErr("start zonal shift", err)
	}
	if err != nil {
		return nil, mapErr("start zonal shift", err)
	}
	return e.after(ctx, res)
}

func (e *Executor) extend(ctx context.Context, id, exp, comment, res string) (map[string]string, error) {
	err := e.call("update_zonal_shift", func() error {
		_, err := e.c.UpdateZonalShift(ctx, &arczonalshift.UpdateZonalShiftInput{ZonalShiftId: aws.String(id),
			ExpiresIn: aws.String(exp), Comment: aws.String(comment)})
		return err
	})
	if err != nil {
		return nil, mapErr("update zonal shift", err)
	}
	return e.after(ctx, res)
}

func (e *Executor) after(ctx context.Context, res string) (map[string]string, error) {
	zones, shifts, err := e.resource(ctx, res)
	if err != nil {
		return nil, err
	}
	return state(zones, shifts), nil
}
