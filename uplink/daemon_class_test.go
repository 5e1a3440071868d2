package uplink

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
	"testing/synctest"
	"time"

	"github.com/nbiot-uploader/uploader/uplink/fault"
)

// The daemon decides from the failure's class: a link failure or a broker
// that declined service is retried with backoff before the next slot; a
// configuration or authorization failure waits for the regular slot. While
// it backs off, a deep queue starts no early window.
func TestDaemonRetriesFollowTheFailureClass(t *testing.T) {
	tests := []struct {
		name      string
		err       error
		wantRetry bool
	}{
		{"link failure", errors.New("tcp connect: connect fail"), true},
		{"broker busy", fault.WithClass(fault.BackOff, errors.New("server busy")), true},
		{"bad password", fault.WithClass(fault.Stop, errors.New("bad user name or password")), false},
		{"invalid configuration", fmt.Errorf("configuration: %w", ErrInvalidConfig), false},
		{"deferred on a poor link", fmt.Errorf("gate: %w: CSQ 4 below the minimum 10", ErrDeferred), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s, err := ParseSchedule("@hourly", Spread{JitterSet: true})
				if err != nil {
					t.Fatal(err)
				}
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				start := time.Now()
				var starts []time.Duration
				var plans []Plan
				d := &Daemon{
					Schedule:   s,
					EarlyDepth: 10,
					CheckEvery: time.Minute,
					Depth:      func() (int64, error) { return 100, nil },
					Logger:     discardLogger(),
					Rand:       rand.New(rand.NewPCG(5, 6)), // its first draw falls before the slot, as about two thirds do
					OnNext:     func(p Plan) { plans = append(plans, p) },
					Window: func(context.Context) (Summary, error) {
						starts = append(starts, time.Since(start))
						switch len(starts) {
						case 1, 2:
							return Summary{Outcome: OutcomeFailed}, tt.err
						case 4:
							cancel()
						}
						return Summary{Outcome: OutcomeOK}, nil
					},
				}
				if err := d.Run(ctx); err != nil {
					t.Fatal(err)
				}
				// 1: early (deep queue) at 1 min, fails.
				if starts[0] != time.Minute {
					t.Fatalf("first window at %v, want the early one at 1m", starts[0])
				}
				if tt.wantRetry {
					// 2: a retry before the slot, at least 5 min later (a
					// tenth of the hour, capped at 5 min); it fails too.
					if gap := starts[1] - starts[0]; gap < 5*time.Minute || starts[1] >= time.Hour || !plans[1].Retry {
						t.Errorf("retry %v after the failure (plan %+v), want at least 5 min later and before the slot", gap, plans[1])
					}
					// 3: no second retry before the slot, no early window:
					// the regular slot at 1 h.
					if starts[2] != time.Hour || plans[2].Retry || plans[2].Failures != 2 {
						t.Errorf("third window at %v (plan %+v), want the regular slot at 1h", starts[2], plans[2])
					}
				} else {
					if starts[1] != time.Hour || plans[1].Retry {
						t.Errorf("after a %v failure the next window is at %v (plan %+v), want the slot at 1h", fault.ClassOf(tt.err), starts[1], plans[1])
					}
					if starts[2] != 2*time.Hour {
						t.Errorf("third window at %v, want 2h (no early windows until a success)", starts[2])
					}
				}
				// After a success early windows come back: one check later.
				if gap := starts[3] - starts[2]; gap != time.Minute {
					t.Errorf("after a success the next window came %v later, want the early one 1 min later", gap)
				}
			})
		})
	}
}

// Decorrelated jitter: every delay in [base, 3 × the previous], never past
// the cap, and back to base after a reset.
func TestBackoffDecorrelatedJitter(t *testing.T) {
	b := &backoff{base: 10 * time.Second, start: 20 * time.Second, cap: time.Hour, rnd: rand.New(rand.NewPCG(7, 7))}
	prev := time.Duration(0)
	grew := false
	for range 200 {
		d := b.next()
		if d < b.base || d > b.cap || d > max(3*max(prev, b.start), b.base) {
			t.Fatalf("delay %v after %v (base %v, cap %v)", d, prev, b.base, b.cap)
		}
		grew = grew || d > 10*b.base
		prev = d
	}
	if !grew {
		t.Error("the backoff never grew past 10 × its base")
	}
	b.reset()
	if d := b.next(); d > 3*b.start {
		t.Errorf("first delay after reset %v, want at most 3 × start", d)
	}
}
