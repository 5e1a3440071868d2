package uplink

import (
	"errors"
	"fmt"
	"testing"
	"time"
)

// By default a site's offset covers the schedule's whole interval; a
// --jitter caps it; --jitter 0 set explicitly means no spread.
func TestSpreadCoversTheInterval(t *testing.T) {
	tests := []struct {
		spec     string
		sp       Spread
		interval time.Duration
		maxSpan  time.Duration // offsets fall in [0, maxSpan)
	}{
		{"@hourly", Spread{}, time.Hour, time.Hour},
		{"*/15 * * * *", Spread{}, 15 * time.Minute, 15 * time.Minute},
		{"0 9,17 * * *", Spread{}, 8 * time.Hour, 8 * time.Hour},
		{"@every 10m", Spread{}, 10 * time.Minute, 10 * time.Minute},
		{"@hourly", Spread{Jitter: 5 * time.Minute, JitterSet: true}, time.Hour, 5 * time.Minute},
		{"@hourly", Spread{Jitter: 3 * time.Hour, JitterSet: true}, time.Hour, time.Hour},
		{"@hourly", Spread{JitterSet: true}, time.Hour, 0},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s %+v", tt.spec, tt.sp), func(t *testing.T) {
			var lo, hi time.Duration = 1 << 62, 0
			for i := range 500 {
				sp := tt.sp
				sp.ClientID = fmt.Sprintf("site-%06d", i)
				s, err := ParseSchedule(tt.spec, sp)
				if err != nil {
					t.Fatal(err)
				}
				if s.Interval() != tt.interval {
					t.Fatalf("interval %v, want %v", s.Interval(), tt.interval)
				}
				lo, hi = min(lo, s.Offset()), max(hi, s.Offset())
			}
			if tt.maxSpan == 0 {
				if hi != 0 {
					t.Errorf("offsets up to %v with --jitter 0", hi)
				}
				return
			}
			if lo < 0 || hi >= tt.maxSpan || hi-lo < tt.maxSpan*9/10 {
				t.Errorf("500 offsets span [%v, %v], want most of [0, %v)", lo, hi, tt.maxSpan)
			}
		})
	}
}

// @every slots are aligned to the epoch plus the site's offset, so a
// daemon that restarts keeps its slot.
func TestEveryIsAlignedToTheEpoch(t *testing.T) {
	s, err := ParseSchedule("@every 15m", Spread{Slot: 1, Slots: 3})
	if err != nil {
		t.Fatal(err)
	}
	if s.Offset() != 5*time.Minute {
		t.Fatalf("offset %v, want 5m (slot 1 of 3 of 15 min)", s.Offset())
	}
	for _, at := range []time.Time{
		time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC),
		time.Date(2026, 12, 5, 10, 7, 13, 0, time.UTC),
		time.Date(2026, 12, 5, 10, 4, 59, 999, time.UTC),
	} {
		next := s.Next(at)
		if next.Sub(at) <= 0 || next.Sub(at) > 15*time.Minute || next.Minute()%15 != 5 || next.Second() != 0 {
			t.Errorf("Next(%v) = %v, want the next hh:05/20/35/50", at.Format(time.TimeOnly), next.Format(time.TimeOnly))
		}
	}
}

// --slot I/N places site I at I*interval/N exactly; bad slots and slots
// mixed with jitter are refused.
func TestSlotPlacesSitesExactly(t *testing.T) {
	const n = 250
	seen := map[time.Duration]bool{}
	for i := range n {
		s, err := ParseSchedule("@hourly", Spread{ClientID: "same-id", Slot: i, Slots: n})
		if err != nil {
			t.Fatal(err)
		}
		if want := time.Duration(i) * time.Hour / n; s.Offset() != want {
			t.Fatalf("slot %d/%d: offset %v, want %v", i, n, s.Offset(), want)
		}
		seen[s.Offset()] = true
	}
	if len(seen) != n {
		t.Errorf("%d distinct offsets for %d slots", len(seen), n)
	}
	for _, sp := range []Spread{
		{Slot: 3, Slots: 3}, {Slot: -1, Slots: 3},
		{Slot: 1, Slots: 3, Jitter: time.Minute, JitterSet: true},
		{Slot: 1, Slots: 3, Random: true},
	} {
		if _, err := ParseSchedule("@hourly", sp); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("%+v: err = %v, want invalid config", sp, err)
		}
	}
}

// FleetLoad counts a fleet's window starts per second and per 10 s over
// one hour; see BENCHMARKS.md (cmd/benchreport prints the same figures).
func TestFleetSpreadOnHourly(t *testing.T) {
	for _, n := range []int{1000, 100000} {
		hash, err := FleetLoadOf("@hourly", n, false)
		if err != nil {
			t.Fatal(err)
		}
		slot, err := FleetLoadOf("@hourly", n, true)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%d sites: hash max %d/s (%.2fx uniform), %d/10s (%.2fx); slot max %d/s (%.2fx), %d/10s (%.2fx)",
			n, hash.MaxPerSecond, hash.SecondRatio(), hash.MaxPer10s, hash.TenSecondRatio(),
			slot.MaxPerSecond, slot.SecondRatio(), slot.MaxPer10s, slot.TenSecondRatio())
		if slot.MaxPer10s > ceilDiv(n, 360) || slot.MaxPerSecond > ceilDiv(n, 3600) {
			t.Errorf("%d sites by --slot: %+v is not exactly uniform", n, slot)
		}
		if n == 100000 && hash.TenSecondRatio() > 1.3 {
			t.Errorf("%d sites by hash: %.2fx uniform per 10 s, goal <= 1.3x", n, hash.TenSecondRatio())
		}
	}
}

func ceilDiv(a, b int) int { return (a + b - 1) / b }
