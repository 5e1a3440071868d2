package uplink

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nbiot-uploader/uploader/uplink/testkit"
)

func TestParseSchedule(t *testing.T) {
	at := time.Date(2026, 11, 25, 14, 7, 30, 0, time.UTC)
	tests := []struct {
		spec string
		want time.Time
	}{
		{"0 * * * *", time.Date(2026, 11, 25, 15, 0, 0, 0, time.UTC)},
		{"*/15 * * * *", time.Date(2026, 11, 25, 14, 15, 0, 0, time.UTC)},
		{"30 0 * * * *", time.Date(2026, 11, 25, 15, 0, 30, 0, time.UTC)}, // seconds field
		{"@hourly", time.Date(2026, 11, 25, 15, 0, 0, 0, time.UTC)},
		{"@daily", time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC)},
		{"@every 10m", time.Date(2026, 11, 25, 14, 10, 0, 0, time.UTC)}, // aligned to the epoch
	}
	for _, tt := range tests {
		s, err := ParseSchedule(tt.spec, Spread{ClientID: "site", JitterSet: true})
		if err != nil {
			t.Errorf("%q: %v", tt.spec, err)
			continue
		}
		if got := s.Next(at); !got.Equal(tt.want) {
			t.Errorf("%q: next %s, want %s", tt.spec, got, tt.want)
		}
	}
	for _, bad := range []string{"", "every hour", "60 * * * *", "* * * *", "@fortnightly"} {
		if _, err := ParseSchedule(bad, Spread{ClientID: "x"}); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("%q: err = %v, want invalid config", bad, err)
		}
	}
	if _, err := ParseSchedule("@hourly", Spread{Jitter: -time.Second, JitterSet: true}); err == nil {
		t.Error("negative jitter accepted")
	}
}

// The stable jitter gives each client id its own slot, the same every
// hour, inside the jitter range.
func TestScheduleStableJitter(t *testing.T) {
	at := time.Date(2026, 11, 25, 14, 7, 0, 0, time.UTC)
	offsets := map[time.Duration]bool{}
	for _, id := range []string{"site-1", "site-2", "site-3", "site-4", "site-5"} {
		s, err := ParseSchedule("@hourly", Spread{ClientID: id, Jitter: 10 * time.Minute, JitterSet: true})
		if err != nil {
			t.Fatal(err)
		}
		off := s.Offset()
		if off < 0 || off >= 10*time.Minute {
			t.Fatalf("%s: offset %s outside [0, 10m)", id, off)
		}
		offsets[off] = true
		n1 := s.Next(at)
		n2 := s.Next(n1)
		if n1.Sub(at.Truncate(time.Hour).Add(time.Hour)) != off && n1.Sub(at.Truncate(time.Hour)) != off {
			t.Errorf("%s: next %s is not an hour boundary + %s", id, n1, off)
		}
		if n2.Sub(n1) != time.Hour {
			t.Errorf("%s: slots %s and %s are not an hour apart", id, n1, n2)
		}
		again, _ := ParseSchedule("@hourly", Spread{ClientID: id, Jitter: 10 * time.Minute, JitterSet: true})
		if again.Offset() != off {
			t.Errorf("%s: offset not stable", id)
		}
	}
	if len(offsets) < 4 {
		t.Errorf("5 sites share %d slots; the hash does not spread them", len(offsets))
	}
}

func TestScheduleRandomJitter(t *testing.T) {
	s, err := ParseSchedule("@hourly", Spread{Jitter: time.Minute, JitterSet: true, Random: true})
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 1, 1, 0, 30, 0, 0, time.UTC)
	for i := 0; i < 50; i++ {
		n := s.Next(at)
		if d := n.Sub(time.Date(2026, 1, 1, 1, 0, 0, 0, time.UTC)); d < 0 || d >= time.Minute {
			t.Fatalf("next %s outside the jitter range", n)
		}
	}
}

// The daemon runs windows one at a time and stops cleanly when cancelled.
func TestDaemonRunsWindowsOneAtATime(t *testing.T) {
	s, err := ParseSchedule("@every 1s", Spread{JitterSet: true})
	if err != nil {
		t.Fatal(err)
	}
	var running, maxRunning, windows atomic.Int32
	ctx, cancel := context.WithCancel(context.Background())
	d := &Daemon{
		Schedule: s,
		Window: func(ctx context.Context) (Summary, error) {
			if r := running.Add(1); r > maxRunning.Load() {
				maxRunning.Store(r)
			}
			defer running.Add(-1)
			if windows.Add(1) == 2 {
				cancel()
			}
			select {
			case <-ctx.Done():
			case <-time.After(300 * time.Millisecond):
			}
			return Summary{Outcome: OutcomeOK}, nil
		},
	}
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("daemon did not stop after cancel")
	}
	if windows.Load() != 2 || maxRunning.Load() != 1 {
		t.Errorf("windows %d, max concurrent %d", windows.Load(), maxRunning.Load())
	}
}

// A deep queue starts a window before the scheduled time.
func TestDaemonEarlyWindow(t *testing.T) {
	s, err := ParseSchedule("@yearly", Spread{JitterSet: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var depth, checks atomic.Int64
	depth.Store(5)
	started := make(chan struct{}, 1)
	d := &Daemon{
		Schedule:   s,
		EarlyDepth: 10,
		CheckEvery: 20 * time.Millisecond,
		Depth: func() (int64, error) {
			checks.Add(1)
			return depth.Load(), nil
		},
		Window: func(context.Context) (Summary, error) {
			started <- struct{}{}
			cancel()
			return Summary{Outcome: OutcomeOK}, nil
		},
	}
	go func() { _ = d.Run(ctx) }()
	// Three depth checks below the threshold: the daemon has looked and
	// decided, more than once, not to start a window.
	testkit.Eventually(t, 5*time.Second, func() bool { return checks.Load() >= 3 }, "the daemon did not check the queue depth three times")
	select {
	case <-started:
		t.Fatal("window started below the threshold")
	default:
	}
	depth.Store(12)
	select {
	case <-started:
	case <-time.After(3 * time.Second):
		t.Fatal("no early window at depth 12 >= 10")
	}
}
