package uplink

import (
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestParseBytes(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		err  string
	}{
		{"5MB", 5_000_000, ""}, {"500kB", 500_000, ""}, {"500KB", 500_000, ""}, {"2 MiB", 2 << 20, ""},
		{"1GB", 1e9, ""}, {"1234", 1234, ""}, {"7B", 7, ""}, {" 3KiB ", 3072, ""},
		{"", 0, "no byte count"}, {"MB", 0, "no byte count"}, {"5 mb", 0, "unknown unit"}, {"1.5MB", 0, "unknown unit"},
		{"-1MB", 0, "no byte count"}, {"99999999999GB", 0, "too large"},
	}
	for _, tc := range tests {
		got, err := ParseBytes(tc.in)
		switch {
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("ParseBytes(%q) = %d, %v; want an error with %q", tc.in, got, err, tc.err)
		case tc.err == "" && (err != nil || got != tc.want):
			t.Errorf("ParseBytes(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
		}
	}
}

func TestForecastAndPace(t *testing.T) {
	mid := time.Date(2026, 4, 16, 0, 0, 0, 0, time.UTC) // half of April's 30 days gone
	if f := forecast(1000, mid); f != 2000 {
		t.Errorf("forecast of 1000 bytes at mid-month = %d, want 2000", f)
	}
	if p := pace(3000, mid); p != 1500 {
		t.Errorf("pace of 3000 at mid-month = %d, want 1500", p)
	}
	// The first hour of a month counts as a day: 30x, not 720x.
	early := time.Date(2026, 4, 1, 1, 0, 0, 0, time.UTC)
	if f := forecast(100, early); f < 3000 || f > 3100 {
		t.Errorf("forecast of 100 bytes after an hour = %d, want about 3,100 (an hour counts as a day: 100 + 29.96 days of 100)", f)
	}
	if f := forecast(0, mid); f != 0 {
		t.Errorf("forecast of nothing = %d", f)
	}
}

// decideBudget on a fixed clock: April 2026 (30 days), a budget of
// 3,000,000 bytes, so 100,000 a day and a pace of 1,500,000 at mid-month.
func TestDecideBudget(t *testing.T) {
	const budget = 3_000_000
	mid := time.Date(2026, 4, 16, 0, 0, 0, 0, time.UTC)
	recent := mid.Add(-time.Hour)
	long := mid.Add(-BudgetStatusEvery)
	tests := []struct {
		name      string
		now       time.Time
		used      int64
		windows   int
		lastSent  time.Time
		hasStatus bool
		want      string
	}{
		{"nothing used", mid, 0, 0, time.Time{}, true, BudgetSend},
		{"below pace", mid, 1_000_000, 100, recent, true, BudgetSend},
		{"ahead of pace: pack", mid, 1_550_000, 1000, recent, true, BudgetPack},
		{"a day ahead after the window: defer", mid, 1_590_000, 10, recent, true, BudgetDefer},
		{"a day ahead, status due", mid, 1_590_000, 10, long, true, BudgetStatusOnly},
		{"a day ahead, status never sent", mid, 1_590_000, 10, time.Time{}, true, BudgetStatusOnly},
		{"a day ahead, no status topic", mid, 1_590_000, 10, long, false, BudgetDefer},
		{"spent", mid, budget, 30, recent, true, BudgetDefer},
		{"spent, status due", time.Date(2026, 4, 30, 23, 0, 0, 0, time.UTC), budget, 30, long.AddDate(0, 0, 14), true, BudgetStatusOnly},
		{"end of month, window would overrun", time.Date(2026, 4, 30, 23, 0, 0, 0, time.UTC), 2_990_000, 100, time.Date(2026, 4, 30, 22, 0, 0, 0, time.UTC), true, BudgetDefer},
		{"first hour of the month: pack", time.Date(2026, 4, 1, 1, 0, 0, 0, time.UTC), 100_000, 1000, time.Time{}, true, BudgetPack},
		{"first hour of the month: over a day's share", time.Date(2026, 4, 1, 1, 0, 0, 0, time.UTC), 120_000, 1, time.Date(2026, 4, 1, 0, 30, 0, 0, time.UTC), true, BudgetDefer},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := decideBudget(tc.now, budget, Usage{AirBytes: tc.used, Windows: tc.windows}, tc.lastSent, tc.hasStatus)
			if d.action != tc.want || d.reason == "" {
				t.Errorf("decision %q (%s), want %q", d.action, d.reason, tc.want)
			}
		})
	}
}

func FuzzParseBytes(f *testing.F) {
	for _, s := range []string{"5MB", "500kB", "2 MiB", "1234", "", "-1", "9223372036854775807", "1e6", "3 KiB "} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseBytes(s)
		if err != nil {
			if n != 0 {
				t.Fatalf("ParseBytes(%q) = %d with error %v", s, n, err)
			}
			return
		}
		if n < 0 {
			t.Fatalf("ParseBytes(%q) = %d, negative", s, n)
		}
		if again, err := ParseBytes(strconv.FormatInt(n, 10)); err != nil || again != n {
			t.Fatalf("ParseBytes(%q) = %d, but its digits parse to %d, %v", s, n, again, err)
		}
	})
}
