package proto

import (
	"math"
	"testing"
)

func TestForecastPointRoundTrip(t *testing.T) {
	p := &ForecastPoint{Rule: "api", Target: "k8s/deployment/demo/api", WindowEnd: 1_700_000_000_000, Observed: 17.3,
		Forecast: 17.5, Lower: math.Inf(-1), Upper: math.NaN(), HorizonSeconds: 60, Model: "seasonal_naive", Recommended: 9, Decided: 9}
	b, err := MarshalForecastPoint(p)
	if err != nil {
		t.Fatal(err)
	}
	got, err := UnmarshalForecastPoint(b)
	if err != nil {
		t.Fatal(err)
	}
	if got.Rule != "api" || got.Observed != 17.3 || got.Lower != 0 || got.Upper != 0 || got.Decided != 9 {
		t.Fatalf("round trip %+v (non-finite bounds are written 0)", got)
	}
	for _, bad := range []string{``, `{`, `{"observed": 1}`, `{"rule": 5}`} {
		if _, err := UnmarshalForecastPoint([]byte(bad)); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// FuzzForecastPoint: whatever decodes encodes and decodes to the same point.
func FuzzForecastPoint(f *testing.F) {
	f.Add([]byte(`{"rule":"api","target":"k8s/deployment/demo/api","window_end_ms":1,"observed":17.3,"forecast":17,"lower":1,"upper":30,"horizon_seconds":60,"model":"holt_winters","recommended_replicas":9,"decided_replicas":8}`))
	f.Add([]byte(`{"rule":"x"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := UnmarshalForecastPoint(b)
		if err != nil {
			return
		}
		enc, err := MarshalForecastPoint(p)
		if err != nil {
			t.Fatalf("encode %+v: %v", p, err)
		}
		q, err := UnmarshalForecastPoint(enc)
		if err != nil || *q != *p {
			t.Fatalf("%+v -> %s -> %+v, %v", p, enc, q, err)
		}
	})
}
