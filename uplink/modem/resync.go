package modem

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// syncCheck is the query Sync resynchronises with. Its information line
// "+CMEE: <n>" is distinctive: the driver never sends AT+CMEE? otherwise,
// so a stale answer of an earlier window cannot carry it.
const syncCheck = "AT+CMEE?"

// resyncLocked makes sure the next answer read belongs to the next command
// written, after a probe whose OK may have been stale. Called with the UART
// held.
func (m *Modem) resyncLocked(ctx context.Context) error {
	if err := m.awaitQuiet(ctx); err != nil {
		return stepErr("AT", err)
	}
	// Whatever an abandoned command still owed is covered by the check.
	m.late = nil
	stale := 0
	seen := false
	check := func(ev event) (bool, error) {
		if ev.kind != evLine {
			return false, nil
		}
		switch {
		case strings.HasPrefix(ev.line, "+CMEE:"):
			seen = true
		case !genericFinal(ev.line):
		case seen:
			return true, parseError(ev.line)
		default:
			// A final before our information line answers a command sent
			// before the check, by us or by an earlier process.
			stale++
		}
		return false, nil
	}
	err := m.exchangeLocked(ctx, syncCheck, shortTimeout, check)
	// A module working through a backlog of earlier commands (a radio-off
	// takes up to 10 s) is given more time as long as their answers keep
	// coming; Sync's own deadline bounds it.
	for counted := 0; errors.Is(err, ErrTimeout) && ctx.Err() == nil && stale > counted; {
		counted = stale
		err = m.await(ctx, shortTimeout, commonHandler(syncCheck, check))
	}
	// The check's answer is consumed or given up on: nothing is owed.
	m.late = nil
	if stale > 0 {
		m.stats.update(func(s *Stats) { s.LateAnswers += int64(stale) })
		m.log.Info("discarded stale answers while synchronising", "answers", stale)
	}
	if err != nil && stale > 0 && errors.Is(err, ErrTimeout) && ctx.Err() == nil {
		// The module answers, but not AT+CMEE? with an information line
		// (firmware that refuses the read form): its ERROR was counted as
		// stale. Go on rather than declare a live module dead.
		m.log.Warn("no +CMEE line in the answer to AT+CMEE?; continuing unsynchronised")
		return nil
	}
	return stepErr(syncCheck, err)
}

// awaitQuiet discards input until the port has been silent for syncQuiet,
// giving up waiting (without an error) after syncQuietMax of chatter: a
// booting module may print banners for seconds, and the check that follows
// copes with what is still to come.
func (m *Modem) awaitQuiet(ctx context.Context) error {
	deadline := time.Now().Add(syncQuietMax)
	for {
		quiet := time.Since(m.lastHeard())
		if quiet >= syncQuiet || time.Now().After(deadline) {
			m.discardFinals()
			return nil
		}
		if err := sleepCtx(ctx, syncQuiet-quiet); err != nil {
			return fmt.Errorf("waiting for a quiet line: %w", err)
		}
	}
}

// discardFinals drops everything read so far, counting the final results
// among it as late answers.
func (m *Modem) discardFinals() {
	var finals int64
	for {
		ev, ok := m.events.pop()
		if !ok {
			break
		}
		if ev.kind == evLine && genericFinal(ev.line) {
			finals++
		}
	}
	if finals > 0 {
		m.stats.update(func(s *Stats) { s.LateAnswers += finals })
	}
}
