package uplink

import (
	"context"
	"fmt"
	"hash/fnv"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/nbiot-uploader/uploader/uplink/fault"
)

// cronParser accepts five fields, an optional leading seconds field, and
// descriptors such as @hourly or @every 15m.
var cronParser = cron.NewParser(cron.SecondOptional | cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// Schedule is a cron spec plus a jitter. By default the jitter is a stable
// offset derived from the client id, so a fleet sharing one spec spreads
// out over the cell and the broker while each site keeps its own
// predictable slot.
type Schedule struct {
	Spec         string
	Jitter       time.Duration
	RandomJitter bool

	cron   cron.Schedule
	offset time.Duration
}

// ParseSchedule validates spec and jitter.
func ParseSchedule(spec string, jitter time.Duration, randomJitter bool, clientID string) (*Schedule, error) {
	cs, err := cronParser.Parse(spec)
	if err != nil {
		return nil, fmt.Errorf("%w: --schedule %q: %v", ErrInvalidConfig, spec, err)
	}
	if jitter < 0 {
		return nil, fmt.Errorf("%w: --jitter %s is negative", ErrInvalidConfig, jitter)
	}
	s := &Schedule{Spec: spec, Jitter: jitter, RandomJitter: randomJitter, cron: cs}
	if jitter > 0 && !randomJitter {
		h := fnv.New64a()
		h.Write([]byte(clientID))
		s.offset = time.Duration(h.Sum64() % uint64(jitter))
	}
	return s, nil
}

// Offset is the stable per-site jitter (zero with random jitter).
func (s *Schedule) Offset() time.Duration { return s.offset }

// Next returns the first window start strictly after t.
func (s *Schedule) Next(t time.Time) time.Time {
	if s.RandomJitter {
		next := s.cron.Next(t)
		if s.Jitter > 0 {
			next = next.Add(rand.N(s.Jitter))
		}
		return next
	}
	// Shift the cron grid by the offset: slots are cron times + offset.
	return s.cron.Next(t.Add(-s.offset)).Add(s.offset)
}

// Daemon runs windows on a schedule, one at a time.
type Daemon struct {
	Schedule *Schedule
	// Window runs one window; its error is logged, never fatal to the daemon.
	Window func(ctx context.Context) (Summary, error)
	// EarlyDepth, when > 0, starts a window early once Depth reports at
	// least this many queued records (checked every CheckEvery).
	EarlyDepth int64
	Depth      func() (int64, error)
	CheckEvery time.Duration
	Logger     *slog.Logger
	// OnNext, when set, is told the next planned window (for status).
	OnNext func(time.Time)
}

// Run loops until ctx is cancelled. Cancelling ctx also cancels a running
// window, which then switches the radio off before Run returns nil.
func (d *Daemon) Run(ctx context.Context) error {
	log := d.Logger
	if log == nil {
		log = slog.Default()
	}
	check := d.CheckEvery
	if check <= 0 {
		check = time.Minute
	}
	// early says whether the queue's depth may start a window before its
	// slot: only while the last failure, if any, was the link's. A broker
	// that declines service or a configuration that is wrong is not helped
	// by more windows, and early ones would burn the battery.
	early := true
	for {
		next := d.Schedule.Next(time.Now())
		if d.OnNext != nil {
			d.OnNext(next)
		}
		log.Info("next window", "at", next.Format(time.RFC3339))
		reason, err := d.wait(ctx, next, check, early, log)
		if err != nil {
			return nil // cancelled: a clean stop
		}
		sum, werr := d.Window(ctx)
		attrs := []any{"reason", reason, "outcome", sum.Outcome, "acked", sum.Acked, "queued", sum.Queued,
			"mqtt_bytes", sum.MQTTBytesOut, "chunks", sum.Chunks, "radio_on_s", round1(sum.RadioOnSeconds), "csq", sum.CSQ,
			"duration_s", round1(sum.DurationSeconds)}
		class := Classify(werr)
		early = werr == nil || class == fault.Retry
		switch {
		case werr == nil:
			log.Info("window done", attrs...)
		case class == fault.Stop:
			log.Error("window failed: "+class.Advice()+"; no early windows until one succeeds",
				append(attrs, "step", sum.Step, "class", class.String(), "err", werr)...)
		default:
			log.Error("window failed", append(attrs, "step", sum.Step, "class", class.String(), "advice", class.Advice(), "err", werr)...)
		}
		if ctx.Err() != nil {
			return nil
		}
	}
}

func round1(f float64) float64 { return float64(int64(f*10+0.5)) / 10 }

// wait sleeps until next, or until the queue is deep enough for an early
// window. It returns the reason the window starts.
func (d *Daemon) wait(ctx context.Context, next time.Time, check time.Duration, early bool, log *slog.Logger) (string, error) {
	for {
		left := time.Until(next)
		if left <= 0 {
			return "schedule", nil
		}
		early := early && d.EarlyDepth > 0 && d.Depth != nil
		step := left
		if early && check < step {
			step = check
		}
		t := time.NewTimer(step)
		select {
		case <-ctx.Done():
			t.Stop()
			return "", ctx.Err()
		case <-t.C:
		}
		if early && time.Until(next) > 0 {
			depth, err := d.Depth()
			if err != nil {
				log.Warn("queue depth check failed", "err", err)
				continue
			}
			if depth >= d.EarlyDepth {
				return fmt.Sprintf("queue depth %d >= %d", depth, d.EarlyDepth), nil
			}
		}
	}
}
