package uplink

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/nbiot-uploader/uploader/uplink/fault"
)

// cronParser accepts five fields, an optional leading seconds field, and
// descriptors such as @hourly or @every 15m.
var cronParser = cron.NewParser(cron.SecondOptional | cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// Spread says how a fleet sharing one schedule spreads its windows. The
// zero value spreads each site over the schedule's whole interval at a
// stable offset derived from its client id: a fleet of thousands on
// @hourly does not connect in the same second, and each site keeps its own
// predictable slot.
type Spread struct {
	ClientID string
	// Jitter, when JitterSet, caps the spread: the offset falls in
	// [0, min(Jitter, interval)). Jitter 0 set explicitly means no spread
	// at all (every site at the cron instant).
	Jitter    time.Duration
	JitterSet bool
	// Random draws the offset afresh for every window instead.
	Random bool
	// Slot and Slots (--slot I/N) place the site exactly: site I of N
	// starts at I*interval/N, a perfectly even fleet. Slots 0 means unset.
	Slot, Slots int
}

// Schedule is a cron spec and the site's place in it.
type Schedule struct {
	Spec string

	cron     cron.Schedule
	every    time.Duration // @every D: slots are aligned to the Unix epoch
	interval time.Duration // shortest gap between two cron instants
	spread   time.Duration // offsets fall in [0, spread)
	random   bool
	offset   time.Duration
}

// ParseSchedule validates spec and the spread and fixes the site's offset.
func ParseSchedule(spec string, sp Spread) (*Schedule, error) {
	s, err := parseSpec(spec)
	if err != nil {
		return nil, err
	}
	return s, s.place(sp)
}

func parseSpec(spec string) (*Schedule, error) {
	cs, err := cronParser.Parse(spec)
	if err != nil {
		return nil, fmt.Errorf("%w: --schedule %q: %w", ErrInvalidConfig, spec, err)
	}
	s := &Schedule{Spec: spec, cron: cs}
	if c, ok := cs.(cron.ConstantDelaySchedule); ok {
		s.every = c.Delay
	}
	s.interval = s.shortestGap()
	return s, nil
}

// place fixes the site's offset in the schedule.
func (s *Schedule) place(sp Spread) error {
	if sp.Jitter < 0 {
		return fmt.Errorf("%w: --jitter %s is negative", ErrInvalidConfig, sp.Jitter)
	}
	s.random, s.spread, s.offset = sp.Random, 0, 0
	switch {
	case sp.Slots > 0:
		if sp.Slot < 0 || sp.Slot >= sp.Slots {
			return fmt.Errorf("%w: --slot %d/%d: want 0 <= I < N", ErrInvalidConfig, sp.Slot, sp.Slots)
		}
		if sp.JitterSet || sp.Random {
			return fmt.Errorf("%w: --slot places the site exactly; leave out --jitter and --random-jitter", ErrInvalidConfig)
		}
		s.offset = time.Duration(int64(s.interval) * int64(sp.Slot) / int64(sp.Slots))
		return nil
	case sp.JitterSet:
		s.spread = min(sp.Jitter, s.interval)
	default:
		s.spread = s.interval
	}
	if s.spread > 0 && !s.random {
		s.offset = stableOffset(sp.ClientID, s.spread)
	}
	return nil
}

// stableOffset maps a client id evenly onto [0, spread): SHA-256 rather
// than a short hash, because fleet ids differ only in a few trailing
// characters (site-000001, site-000002 ...).
func stableOffset(clientID string, spread time.Duration) time.Duration {
	sum := sha256.Sum256([]byte("uploader slot\x00" + clientID))
	return time.Duration(binary.BigEndian.Uint64(sum[:8]) % uint64(spread))
}

// shortestGap is the schedule's interval: the shortest time between two
// of its instants over a stretch of them, so an offset below it never
// pushes a window past the next one.
func (s *Schedule) shortestGap() time.Duration {
	if s.every > 0 {
		return s.every
	}
	t := s.cron.Next(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	gap := time.Duration(0)
	for range 64 {
		n := s.cron.Next(t)
		if n.IsZero() {
			break
		}
		if d := n.Sub(t); gap == 0 || d < gap {
			gap = d
		}
		t = n
	}
	return gap
}

// Offset is the site's stable offset after each cron instant (zero with
// random jitter).
func (s *Schedule) Offset() time.Duration { return s.offset }

// Interval is the shortest time between two windows of the schedule.
func (s *Schedule) Interval() time.Duration { return s.interval }

// Next returns the first window start strictly after t.
func (s *Schedule) Next(t time.Time) time.Time {
	offset := s.offset
	if s.random && s.spread > 0 {
		offset = rand.N(s.spread)
	}
	if s.every > 0 {
		// Aligned to the epoch, so a restarted daemon keeps its slot.
		k := (t.UnixNano() - int64(offset)) / int64(s.every)
		next := time.Unix(0, k*int64(s.every)+int64(offset))
		for !next.After(t) {
			next = next.Add(s.every)
		}
		return next.In(t.Location())
	}
	// Shift the cron grid by the offset: slots are cron times + offset.
	return s.cron.Next(t.Add(-offset)).Add(offset)
}

// Plan is the daemon's next planned window.
type Plan struct {
	At    time.Time `json:"at"`
	Retry bool      `json:"retry,omitempty"` // a retry after a failed window, before the regular slot
	// Failures is how many windows in a row have failed.
	Failures int `json:"failures,omitempty"`
}

// Backoff bounds: the decorrelated-jitter exponential backoff between a
// failed window and its retry waits at least a tenth of the schedule's
// interval (between 10 s and 5 min), at first up to 1.5 intervals,
// and never more than BackoffCap — nor past the next regular slot, which
// always runs.
const (
	backoffMinBase = 10 * time.Second
	backoffMaxBase = 5 * time.Minute
	BackoffCap     = 6 * time.Hour
)

// backoff is decorrelated-jitter exponential backoff: each delay is drawn
// from [base, 3 × the previous delay], capped; a success resets it. The
// "previous delay" of the first draw is start, half the schedule's
// interval, so first retries spread over one and a half intervals: when a
// broker outage fails a whole fleet at once, only about two thirds of them
// fall before each site's next slot (the others give way to it), later
// ones fewer still, and the fleet's load stays within twice its normal
// rate (TestFleetOutageStaysWithinTwiceNormalRate: 1.5x).
type backoff struct {
	base, start, cap time.Duration
	last             time.Duration
	rnd              *rand.Rand
}

func (b *backoff) next() time.Duration {
	prev := b.last
	if prev == 0 {
		prev = b.start
	}
	hi := max(prev*3, b.base)
	d := b.base + time.Duration(b.rnd.Int64N(int64(hi-b.base)+1))
	b.last = min(d, b.cap)
	return b.last
}

func (b *backoff) reset() { b.last = 0 }

// Daemon runs windows on a schedule, one at a time.
//
// After a failed window it retries with backoff, at most once between two
// regular slots, so a fleet's attempts during a broker outage stay within
// twice its normal rate and its reconnections when the broker returns are
// spread like its slots. Failures that retrying cannot mend (class
// fault.Stop: configuration, authorization) are not retried: the next
// regular slot runs, and they are logged as errors every time.
type Daemon struct {
	Schedule *Schedule
	// Window runs one window; its error is logged, never fatal to the daemon.
	Window func(ctx context.Context) (Summary, error)
	// EarlyDepth, when > 0, starts a window early once Depth reports at
	// least this many queued records (checked every CheckEvery), but never
	// while the daemon is backing off after a failure.
	EarlyDepth int64
	Depth      func() (int64, error)
	CheckEvery time.Duration
	Logger     *slog.Logger
	// OnNext, when set, is told each planned window (for status).
	OnNext func(Plan)
	// Rand draws the backoff; nil seeds one from the clock.
	Rand *rand.Rand
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
	rnd := d.Rand
	if rnd == nil {
		rnd = rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 0x5107))
	}
	base := min(max(d.Schedule.Interval()/10, backoffMinBase), backoffMaxBase)
	bo := &backoff{base: base, start: d.Schedule.Interval() / 2, cap: BackoffCap, rnd: rnd}
	var (
		failures  int
		lastRetry bool        // the last window was a retry: the next is a regular slot
		lastClass fault.Class // of the last failure
	)
	for {
		now := time.Now()
		plan := Plan{At: d.Schedule.Next(now), Failures: failures}
		if failures > 0 && !lastRetry && lastClass != fault.Stop {
			if at := now.Add(bo.next()); at.Before(plan.At) {
				plan.At, plan.Retry = at, true
			}
		}
		if d.OnNext != nil {
			d.OnNext(plan)
		}
		log.Info("next window", "at", plan.At.Format(time.RFC3339), "retry", plan.Retry)
		reason, err := d.wait(ctx, plan.At, check, failures == 0, log)
		if err != nil {
			return nil // cancelled: a clean stop
		}
		if plan.Retry {
			reason = fmt.Sprintf("retry after %d failed windows", failures)
		}
		sum, werr := d.Window(ctx)
		attrs := []any{"reason", reason, "outcome", sum.Outcome, "acked", sum.Acked, "queued", sum.Queued,
			"mqtt_bytes", sum.MQTTBytesOut, "chunks", sum.Chunks, "radio_on_s", round1(sum.RadioOnSeconds), "csq", sum.CSQ,
			"duration_s", round1(sum.DurationSeconds)}
		lastRetry = plan.Retry
		class := Classify(werr)
		switch {
		case werr == nil:
			failures, lastClass = 0, fault.Retry
			bo.reset()
			log.Info("window done", attrs...)
		case errors.Is(werr, ErrDeferred):
			// A poor link or supply: no retries and no early windows
			// (they would burn the battery on the same poor link); the
			// next regular slot tries again.
			failures, lastClass = failures+1, fault.Stop
			log.Warn("window deferred", append(attrs, "err", werr)...)
		case errorsIsBusy(werr):
			// Another process ran the window: not this daemon's failure.
			log.Warn("window not run: the queue or the modem is busy", append(attrs, "err", werr)...)
		case class == fault.Stop:
			failures, lastClass = failures+1, class
			log.Error("window failed: "+class.Advice()+"; no retries or early windows until one succeeds",
				append(attrs, "step", sum.Step, "class", class.String(), "err", werr)...)
		default:
			failures, lastClass = failures+1, class
			log.Error("window failed", append(attrs, "step", sum.Step, "class", class.String(), "advice", class.Advice(), "err", werr)...)
		}
		if ctx.Err() != nil {
			return nil
		}
	}
}

func round1(f float64) float64 { return float64(int64(f*10+0.5)) / 10 }

// wait sleeps until next, or, when early windows are allowed, until the
// queue is deep enough for one. It returns the reason the window starts.
func (d *Daemon) wait(ctx context.Context, next time.Time, check time.Duration, early bool, log *slog.Logger) (string, error) {
	early = early && d.EarlyDepth > 0 && d.Depth != nil
	for {
		left := time.Until(next)
		if left <= 0 {
			return "schedule", nil
		}
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
