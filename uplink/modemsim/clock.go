package modemsim

import (
	"context"
	"sync/atomic"
	"time"
)

// clock is the simulator's time line: wall time since the start, or a
// virtual time that only the module goroutine advances. Readers on other
// goroutines (Accounting) see it through an atomic.
type clock struct {
	virtual bool
	start   time.Time
	v       atomic.Int64 // virtual now, in nanoseconds
}

func newClock(virtual bool) *clock {
	return &clock{virtual: virtual, start: time.Now()}
}

func (c *clock) now() time.Duration {
	if c.virtual {
		return time.Duration(c.v.Load())
	}
	return time.Since(c.start)
}

// waitUntil moves the module to instant t: the virtual clock jumps, the real
// one is slept through. Only the module goroutine calls it.
func (c *clock) waitUntil(ctx context.Context, t time.Duration) error {
	if c.virtual {
		if int64(t) > c.v.Load() {
			c.v.Store(int64(t))
		}
		return nil
	}
	return sleep(ctx, t-c.now())
}

// sleep waits d of wall-clock time or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// transfer is the time n bytes take at rate bytes per second (0 = instant).
func transfer(n int, rate int) time.Duration {
	if rate <= 0 || n <= 0 {
		return 0
	}
	return time.Duration(int64(n) * int64(time.Second) / int64(rate))
}

// uartTime is the time n bytes take on an 8N1 UART at baud.
func uartTime(n int, baud int) time.Duration {
	if baud <= 0 || n <= 0 {
		return 0
	}
	return time.Duration(int64(n) * 10 * int64(time.Second) / int64(baud))
}
