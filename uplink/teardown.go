package uplink

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// radioOffBudget is how long the teardown (closing the connection, then
// switching the radio off) may take in all, even after the window's own
// deadline has passed or a signal arrived: leaving the radio on would drain
// the battery until the next window, so it gets time of its own — one
// budget shared by every teardown step, so a hung module cannot stretch it.
const radioOffBudget = 15 * time.Second

// TeardownPlan is how a held modem is left. It is computed once, from how
// the hold ended (planTeardown), and then carried out step by step in the
// order of its fields.
type TeardownPlan struct {
	// DrainConn: before closing, wait (bounded) until AT+CIPACK reports
	// every byte acknowledged by the broker's host: the quick close drops
	// whatever the module has not yet put on the air, and after a clean
	// session that is the DISCONNECT — without it the broker publishes the
	// will and logs the window as lost. Only with a will: the wait costs a
	// round trip of radio time (about 3 % of a 1,000-reading NB-IoT
	// window), and without a will a lost DISCONNECT costs nothing but a
	// line in the broker's log (every PUBLISH is acknowledged by then).
	DrainConn bool
	// CloseConn: AT+CIPCLOSE and AT+CIPSHUT; the connection is open and
	// the module is between packets.
	CloseConn bool
	// AwaitBroker: a split write was cut short and no power switch can
	// reset the module. The module may be waiting for the rest of a
	// PUBLISH the broker holds part of, so it is sent nothing — not even
	// AT+CIPCLOSE — until the broker has dropped the connection; then it
	// is resynchronised (its pending send goes into a closed connection).
	AwaitBroker bool
	// PowerDown: AT+CPOWD=1, the module's orderly shutdown before its
	// supply is cut.
	PowerDown bool
	// RadioOff: AT+CFUN=0.
	RadioOff bool
	// CutPower: the power-off command. After a cut split write it is the
	// only step: the module hears nothing more.
	CutPower bool
}

func (p TeardownPlan) String() string {
	var steps []string
	for _, s := range []struct {
		on   bool
		name string
	}{
		{p.DrainConn, "wait for the TCP acknowledgement"}, {p.CloseConn, "close connection"}, {p.AwaitBroker, "wait for the broker to drop the connection"},
		{p.PowerDown, "AT+CPOWD=1"}, {p.RadioOff, "AT+CFUN=0"}, {p.CutPower, "cut power"},
	} {
		if s.on {
			steps = append(steps, s.name)
		}
	}
	if len(steps) == 0 {
		return "leave as is"
	}
	return strings.Join(steps, ", ")
}

// holdState is what the teardown plan depends on.
type holdState struct {
	opened      bool // the port is open and the module answered
	connOpen    bool // a TCP connection was dialled through the module
	splitCut    bool // a split write stopped without the next prompt (modem.ErrSplitWriteCut)
	cleanEnd    bool // the MQTT session ended with DISCONNECT written
	will        bool // the session's CONNECT carried a will
	powerSwitch bool
	keepRadio   bool
}

// planTeardown decides the teardown. A cut split write overrides
// everything else: nothing may complete the PUBLISH the broker holds part
// of. Otherwise the connection is closed, and the radio switched off (with
// a power switch: AT+CPOWD=1, then the supply cut) unless the holder keeps
// it as it is.
func planTeardown(s holdState) TeardownPlan {
	switch {
	case s.splitCut && s.powerSwitch:
		return TeardownPlan{CutPower: true}
	case s.splitCut:
		return TeardownPlan{AwaitBroker: true, RadioOff: true}
	}
	p := TeardownPlan{CloseConn: s.opened && s.connOpen}
	p.DrainConn = p.CloseConn && s.cleanEnd && s.will
	switch {
	case s.keepRadio:
	case s.powerSwitch:
		p.PowerDown = s.opened
		p.CutPower = true
	default:
		p.RadioOff = s.opened
	}
	return p
}

// Close tears the hold down by its plan and releases the modem lock. It
// runs on a budget of its own (radioOffBudget, shared by every step), so a
// cancelled or expired ctx still gets the radio switched off. Safe to call
// twice; the second call returns the first one's report.
func (h *Modem) Close(ctx context.Context) Teardown {
	if h.closed {
		return h.teardown
	}
	h.closed = true
	splitCut := h.conn != nil && h.conn.SplitWriteCut()
	plan := planTeardown(holdState{
		opened:      h.Modem != nil,
		connOpen:    h.conn != nil,
		splitCut:    splitCut,
		cleanEnd:    h.cleanEnd,
		will:        h.cfg.WillTopic != "",
		powerSwitch: h.cfg.Power.Configured(),
		keepRadio:   h.opts.KeepRadio,
	})
	td := Teardown{Plan: plan}
	h.log.Debug("modem teardown", "plan", plan.String())
	budget, cancel := context.WithTimeout(context.WithoutCancel(ctx), radioOffBudget)
	defer cancel()
	if plan.AwaitBroker {
		// The wait itself is not part of the budget.
		wait := max(time.Until(h.mark.Until()), 0)
		h.log.Warn("the module may be waiting for the rest of a PUBLISH; keeping the radio on until the broker has dropped the connection",
			"wait", wait.Round(time.Second))
		budget, cancel = context.WithTimeout(context.WithoutCancel(ctx), wait+radioOffBudget)
		defer cancel()
		td.Err = h.awaitBroker(budget)
	}
	if splitCut && plan.CutPower {
		h.log.Warn("the module may be waiting for the rest of a PUBLISH; cutting its power without a word")
	}
	if plan.DrainConn {
		h.drain(budget)
	}
	if plan.CloseConn {
		if err := h.conn.CloseContext(budget); err != nil {
			// A failed close only costs the module's clean-up, which
			// AT+CFUN=0 or the power cut does anyway.
			h.log.Warn("closing the modem connection failed", "err", err)
		} else {
			// The broker has dropped whatever part of a packet it held.
			h.mark.drop(h.log)
		}
	}
	if plan.PowerDown {
		if err := h.PowerDown(budget); err != nil {
			h.log.Warn("AT+CPOWD=1 failed; cutting power anyway", "err", err)
		}
	}
	if plan.RadioOff && td.Err == nil {
		if err := h.SetFunctionality(budget, 0); err != nil {
			td.Err = fmt.Errorf("radio off (AT+CFUN=0): %w", err)
		}
	}
	if !h.radioOn.IsZero() {
		td.RadioOnSeconds = time.Since(h.radioOn).Seconds()
	}
	if h.Modem != nil {
		td.CIPSends = int(h.Stats().CIPSends)
		h.Modem.Close()
	}
	if plan.CutPower {
		if err := h.cutPower(ctx); err != nil && td.Err == nil {
			td.Err = err
		} else if err == nil {
			// A module without supply sends nothing more: whatever part
			// of a PUBLISH the broker holds stays incomplete.
			h.mark.drop(h.log)
		}
	}
	if td.Err != nil {
		h.log.Error("the radio may still be on", "plan", plan.String(), "err", td.Err)
	}
	h.release()
	h.teardown = td
	return td
}

// awaitBroker waits out the mid-packet mark, then resynchronises: the
// probes and filler complete the module's pending send into a connection
// the broker has closed.
func (h *Modem) awaitBroker(ctx context.Context) error {
	err := h.mark.await(ctx, h.log)
	if err == nil {
		err = h.Sync(ctx)
	}
	if err != nil {
		return fmt.Errorf("radio off after an interrupted PUBLISH: %w", err)
	}
	return nil
}

// cutPower runs the power-off command. Cutting the supply is the last
// resort: it gets its own time even when the shared budget is spent.
func (h *Modem) cutPower(ctx context.Context) error {
	if !h.cfg.Power.Configured() {
		return nil
	}
	offCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), powerCommandTimeout)
	defer cancel()
	if err := runPowerCommand(offCtx, "off", h.cfg.Power.Off); err != nil {
		return err
	}
	return nil
}

// drainWait bounds the wait for the TCP acknowledgement of the last bytes:
// a few NB-IoT round trips. Past it the close goes ahead (the broker may
// then see no DISCONNECT, which costs a will message, not a reading).
const drainWait = 5 * time.Second

// drain polls AT+CIPACK until the broker's host has acknowledged every
// byte sent, or drainWait (within the teardown budget) runs out.
func (h *Modem) drain(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, drainWait)
	defer cancel()
	poll := 50 * time.Millisecond
	for {
		_, _, unacked, err := h.conn.Acked(ctx)
		switch {
		case err != nil:
			h.log.Debug("AT+CIPACK before closing failed; closing anyway", "err", err)
			return
		case unacked == 0:
			return
		}
		if sleepCtx(ctx, poll) != nil {
			h.log.Warn("the broker's host had not acknowledged the last bytes in time; closing anyway", "unacknowledged", unacked)
			return
		}
		poll = min(2*poll, 500*time.Millisecond)
	}
}
