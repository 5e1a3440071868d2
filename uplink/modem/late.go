package modem

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// The module answers every command line exactly once and in order, so a
// command the host abandons (its context ended, or its timeout passed while
// a slow module was still working) still owes one final result. Taken
// naively, that late "OK" or "ERROR" becomes the answer of the next command
// and every answer after it is off by one: a radio-off that the module has
// not done yet reads as confirmed. Two defences live here:
//
//   - The abandoned command is remembered (lateAnswer). Before the next
//     command goes out, the driver waits a short, bounded grace for the
//     late final and discards it. The grace is short because it comes out
//     of the next command's budget (typically the radio-off at teardown),
//     and is skipped when the module has demonstrably stopped talking.
//   - Sync, the first exchange of a process that may inherit such answers
//     from an earlier one, resynchronises with a query whose information
//     line no ordinary command of this driver provokes (see Sync).
//
// A module that stopped answering shows as silence: no byte from the port
// (no echo, no URC, no answer) since an abandoned command was written or
// since the last byte read, whichever came later. Silence of suspectQuiet
// makes it suspect, of stallEvidence stalled. For a suspect module teardown
// spends a short probe instead of the full CIPCLOSE timeout, and skips
// CIPSHUT if the probe got nothing, leaving its budget to AT+CFUN=0; for a
// stalled one no grace is spent waiting for late answers.

// lateAnswer is the final result an abandoned command still owes.
type lateAnswer struct {
	cmd   string
	until time.Time              // stop waiting for it then
	final func(line string) bool // recognises the line that ends its answer
}

// silence is the evidence that the module stopped answering. Only the
// holder of the UART touches it.
type silence struct {
	mark  int64     // Modem.heard when a command was abandoned; -1: none
	since time.Time // the later of that command's writing and the last byte read
}

// abandonedBy reports whether err left a command without its final result
// (as opposed to a final result that was an error, or a dead port).
func abandonedBy(err error) bool {
	if err == nil || errors.Is(err, ErrClosed) {
		return false
	}
	return errors.Is(err, ErrTimeout) || errors.Is(err, context.Canceled) ||
		errors.Is(err, context.DeadlineExceeded)
}

// noteAbandoned records that cmd, written at sent, was given up with err:
// by its own timeout when ctxEnded is false, else by the caller's context
// before its timeout ran out. Called with the UART held.
func (m *Modem) noteAbandoned(cmd string, sent time.Time, timeout time.Duration, err error, ctxEnded bool) {
	if !abandonedBy(err) {
		return
	}
	now := time.Now()
	if heard := m.heard.Load(); heard != m.silent.mark {
		// A mark stays valid exactly as long as nothing more is read (the
		// counter only grows); an older valid mark is kept because its
		// silence started earlier.
		since := sent
		if last := m.lastHeard(); last.After(since) {
			since = last
		}
		m.silent = silence{mark: heard, since: since}
	}
	if m.stalled() {
		m.log.Warn("modem silent since a command was sent", "command", commandName(cmd),
			"silent", m.quiet().Round(time.Millisecond))
		m.late = nil
		return
	}
	// A caller that gave up early leaves the module the rest of its time,
	// up to lateGrace; a command that ran out of its own time gets
	// lateGrace beyond it, because a module that is merely slow (and not
	// silent: see stalled) answers soon after.
	grace := lateGrace
	if ctxEnded {
		grace = min(grace, sent.Add(timeout).Sub(now))
	}
	if grace <= 0 {
		m.late = nil
		return
	}
	m.late = &lateAnswer{cmd: cmd, until: now.Add(grace), final: lateFinal(cmd)}
}

// quiet is how long the port has been silent since a command was
// abandoned (0 when something was read since).
func (m *Modem) quiet() time.Duration {
	if m.silent.mark < 0 || m.silent.mark != m.heard.Load() {
		return 0
	}
	return time.Since(m.silent.since)
}

// suspect reports whether the module may have stopped answering.
func (m *Modem) suspect() bool { return m.quiet() >= suspectQuiet }

// stalled reports whether the silence has lasted long enough to call the
// module hung.
func (m *Modem) stalled() bool { return m.quiet() >= stallEvidence }

// stalledErr fails the socket's traffic fast on a hung module: another
// CIPSEND or CIPRXGET would only wait out its own timeout, time the
// teardown (AT+CFUN=0) needs. Commands of Modem itself still go out: they
// are how a caller recovers or switches the radio off. Called with the UART
// held.
func (m *Modem) stalledErr() error {
	if !m.stalled() {
		return nil
	}
	return fmt.Errorf("%w: the module has sent nothing for %v", ErrTimeout, m.quiet().Round(time.Millisecond))
}

// lastHeard is when the reader last got bytes (the zero time if never).
func (m *Modem) lastHeard() time.Time {
	ns := m.heardAt.Load()
	if ns == 0 {
		return time.Time{}
	}
	return m.born.Add(time.Duration(ns))
}

// settleLate waits for the final result an abandoned command still owes,
// at most until its grace ends and never past ctx, and discards it with
// everything before it. Called with the UART held, before begin.
func (m *Modem) settleLate(ctx context.Context) error {
	late := m.late
	if late == nil {
		return nil
	}
	m.late = nil
	if m.stalled() {
		return nil
	}
	wait := time.Until(late.until)
	found := errors.New("late final seen")
	err := m.await(ctx, max(wait, 0), func(ev event) (bool, error) {
		if ev.kind == evLine && late.final(ev.line) {
			return true, found
		}
		return false, nil
	})
	switch {
	case errors.Is(err, found):
		m.stats.update(func(s *Stats) { s.LateAnswers++ })
		m.log.Debug("discarded the late answer of an abandoned command", "command", commandName(late.cmd))
		return nil
	case errors.Is(err, ErrTimeout) && ctx.Err() == nil:
		// Nothing came within the grace: the next answer is taken as the
		// next command's, which is the best that can be done without
		// spending the caller's whole budget here.
		m.log.Warn("no late answer from an abandoned command", "command", commandName(late.cmd))
		return nil
	}
	return err
}

// lateFinal returns what ends the answer to cmd. Most commands end with a
// generic final; a few answer "OK" first and their outcome later, and
// AT+CIFSR answers with a bare address.
func lateFinal(cmd string) func(string) bool {
	upper := strings.ToUpper(cmd)
	switch {
	case strings.HasPrefix(upper, "AT+CIPSTART="):
		return func(line string) bool {
			switch line {
			case "CONNECT OK", "CONNECT FAIL", "ALREADY CONNECT":
				return true
			}
			return parseError(line) != nil
		}
	case upper == "AT+CIFSR":
		return func(line string) bool {
			_, ip := parseIPLine(line)
			return ip || parseError(line) != nil
		}
	case upper == "AT+CIPSTATUS":
		// OK and the STATE line come in either order depending on the
		// firmware: wait for both, so neither is left for the next command.
		okSeen, stateSeen := false, false
		return func(line string) bool {
			switch {
			case line == "OK":
				okSeen = true
			case strings.HasPrefix(line, "STATE:"):
				stateSeen = true
			case parseError(line) != nil:
				return true
			}
			return okSeen && stateSeen
		}
	}
	return genericFinal
}
