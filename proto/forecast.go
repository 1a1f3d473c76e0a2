package proto

import (
	"encoding/json"
	"fmt"
)

// ForecastPoint is one record of augur.forecasts: what a scaling rule saw
// and forecast when one of its windows closed, and what it recommended and
// decided. The stream writes one per window close of every scaling group,
// keyed by Target, in the transaction that carries the window's decisions.
// JSON, field names as below; numbers that are not finite are written 0.
type ForecastPoint struct {
	// Rule and Tenant name the scaling group; Target its workload
	// (k8s/<kind>/<namespace>/<name>).
	Rule   string `json:"rule"`
	Tenant string `json:"tenant,omitempty"`
	Target string `json:"target"`
	// WindowEnd is the window's end, unix milliseconds (event time).
	WindowEnd int64 `json:"window_end_ms"`
	// Observed is the window's signal (the rule's aggregation, per second).
	Observed float64 `json:"observed"`
	// Forecast, Lower and Upper are the served forecast and its 80%
	// interval HorizonSeconds after WindowEnd, by Model.
	Forecast       float64 `json:"forecast"`
	Lower          float64 `json:"lower"`
	Upper          float64 `json:"upper"`
	HorizonSeconds float64 `json:"horizon_seconds"`
	Model          string  `json:"model"`
	// Recommended is the replicas the forecast asks for; Decided the
	// replicas of the group's last decision (0 before the first).
	Recommended int32 `json:"recommended_replicas"`
	Decided     int32 `json:"decided_replicas"`
}

// MarshalForecastPoint encodes p for augur.forecasts.
func MarshalForecastPoint(p *ForecastPoint) ([]byte, error) {
	c := *p
	c.Observed, c.Forecast, c.Lower, c.Upper = Finite(c.Observed), Finite(c.Forecast), Finite(c.Lower), Finite(c.Upper)
	return json.Marshal(&c)
}

// UnmarshalForecastPoint decodes a record value of augur.forecasts.
func UnmarshalForecastPoint(b []byte) (*ForecastPoint, error) {
	var p ForecastPoint
	if err := json.Unmarshal(b, &p); err != nil {
		return nil, fmt.Errorf("decode forecast point: %w", err)
	}
	if p.Rule == "" {
		return nil, fmt.Errorf("decode forecast point: no rule")
	}
	return &p, nil
}
