package detectors

import "testing"

func TestWindowGrid(t *testing.T) {
	tests := []struct{ t, w, start, ceil int64 }{
		{0, 60, 0, 0},
		{60, 60, 60, 60},
		{61, 60, 60, 120},
		{119, 60, 60, 120},
		{315_000, 60_000, 300_000, 360_000},
		{-1, 60, -60, 0},
		{-60, 60, -60, -60},
	}
	for _, tt := range tests {
		if got := WindowStart(tt.t, tt.w); got != tt.start {
			t.Errorf("WindowStart(%d, %d) = %d, want %d", tt.t, tt.w, got, tt.start)
		}
		if got := WindowCeil(tt.t, tt.w); got != tt.ceil {
			t.Errorf("WindowCeil(%d, %d) = %d, want %d", tt.t, tt.w, got, tt.ceil)
		}
	}
}
