package uplink

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"github.com/nbiot-uploader/uploader/uplink/fault"
)

// The daemon decides from the failure's class: after a link failure a deep
// queue may still start windows early; after a configuration or
// authorization failure, or a broker that declined service, only the
// regular slots run until a window succeeds.
func TestDaemonEarlyWindowsFollowTheFailureClass(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want []time.Duration // window starts after the daemon started
	}{
		{"link failure retries early", errors.New("tcp connect: connect fail"), []time.Duration{time.Minute, 2 * time.Minute, 3 * time.Minute}},
		{"stop waits for the slot", fault.WithClass(fault.Stop, errors.New("bad user name or password")), []time.Duration{time.Minute, time.Hour, time.Hour + time.Minute}},
		{"backoff waits for the slot", fault.WithClass(fault.BackOff, errors.New("server busy")), []time.Duration{time.Minute, time.Hour, time.Hour + time.Minute}},
		{"invalid configuration waits for the slot", fmt.Errorf("configuration: %w", ErrInvalidConfig), []time.Duration{time.Minute, time.Hour, time.Hour + time.Minute}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s, err := ParseSchedule("@hourly", 0, false, "x")
				if err != nil {
					t.Fatal(err)
				}
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				start := time.Now()
				var starts []time.Duration
				d := &Daemon{
					Schedule:   s,
					EarlyDepth: 10,
					CheckEvery: time.Minute,
					Depth:      func() (int64, error) { return 100, nil },
					Logger:     discardLogger(),
					Window: func(context.Context) (Summary, error) {
						starts = append(starts, time.Since(start))
						switch len(starts) {
						case 1:
							return Summary{Outcome: OutcomeFailed}, tt.err
						case 3:
							cancel()
						}
						return Summary{Outcome: OutcomeOK}, nil
					},
				}
				if err := d.Run(ctx); err != nil {
					t.Fatal(err)
				}
				if fmt.Sprint(starts) != fmt.Sprint(tt.want) {
					t.Errorf("windows started at %v, want %v", starts, tt.want)
				}
			})
		})
	}
}
