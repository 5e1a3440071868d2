package uplink

import (
	"context"
	"io"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/nbiot-uploader/uploader/uplink/fault"
	"github.com/nbiot-uploader/uploader/uplink/modem"
)

// HoldOptions say what a holder of the modem does with it, which decides
// how it is left afterwards.
type HoldOptions struct {
	// What describes the holder in the busy message another process
	// prints ("uploader flush", "uploader modem check").
	What string
	// KeepRadio leaves the module as the holder left it: no AT+CFUN=0, no
	// power cut (`modem check --keep-radio-on`, `modem at`). An
	// interrupted split send still gets its safe teardown.
	KeepRadio bool
	// NoPowerOn skips the power-on command: the holder only wants the
	// module off (the daemon's start-up). With a power switch the module
	// is then not opened at all; Close cuts its supply.
	NoPowerOn bool
}

// Modem is the SIM7000 while this process holds it: the modem lock taken,
// what a dead holder left in the module dealt with (power-cycle or wait,
// see # Caveats), the module powered, its port open and answering AT.
// Close tears it down by one plan computed once (TeardownPlan), with one
// shared time budget, and releases the lock.
//
// Every process that talks to the module goes through OpenModem or
// WithModem: windows, `modem check`, `modem at`, the daemon's start-up.
type Modem struct {
	*modem.Modem // nil when NoPowerOn skipped opening a switched module

	cfg  Config
	opts HoldOptions
	log  *slog.Logger
	lock *ModemLock
	mark *midPacketMark

	conn      *modem.Conn
	keepAlive atomic.Int64 // nanoseconds; the broker's if it announced one
	radioOn   time.Time
	cleanEnd  bool // SessionEnded(true): the last bytes were a DISCONNECT
	closed    bool
	teardown  Teardown
}

// Teardown reports how a held modem was left.
type Teardown struct {
	Plan           TeardownPlan
	RadioOnSeconds float64 // from RadioOn to the end of the teardown; 0 if the radio was not switched on
	CIPSends       int     // AT+CIPSEND chunks of the whole hold
	Err            error   // the first teardown step that failed (radio possibly left on)
}

// OpenModem takes the modem lock (waiting up to cfg.ModemLockTimeout), deals
// with a mid-packet mark an earlier holder left (a power switch
// power-cycles the module, otherwise it waits until the broker has dropped
// that connection), powers the module on and opens and synchronises its
// port, power-cycling once a module that does not answer. Only the modem
// fields of cfg are used. Errors name their step (*fault.StepError).
func OpenModem(ctx context.Context, cfg Config, opts HoldOptions) (*Modem, error) {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if err := cfg.validateModem(); err != nil {
		return nil, stepErr(StepConfig, err)
	}
	lock, err := AcquireModemLock(ctx, cfg.LockPath, opts.What, cfg.ModemLockTimeout)
	if err != nil {
		return nil, stepErr(StepModemLock, err)
	}
	mark, err := openMidPacketMark(cfg.LockPath)
	if err != nil {
		_ = lock.Release()
		return nil, stepErr(StepModemLock, err)
	}
	h := &Modem{cfg: cfg, opts: opts, log: log, lock: lock, mark: mark}
	h.keepAlive.Store(int64(cfg.KeepAlive) * int64(time.Second))
	if err := h.powerOn(ctx); err != nil {
		h.release()
		return nil, err
	}
	if opts.NoPowerOn && cfg.Power.Configured() {
		return h, nil
	}
	m, err := h.open(ctx)
	if err != nil {
		if perr := h.cutPower(ctx); perr != nil {
			log.Error("power off failed", "err", perr)
		}
		h.release()
		return nil, err
	}
	h.Modem = m
	return h, nil
}

// WithModem holds the modem for fn: OpenModem, fn, Close. The error is
// fn's, or the one that kept fn from running; how the module was left is
// in the Teardown.
func WithModem(ctx context.Context, cfg Config, opts HoldOptions, fn func(ctx context.Context, m *Modem) error) (Teardown, error) {
	m, err := OpenModem(ctx, cfg, opts)
	if err != nil {
		return Teardown{}, err
	}
	err = fn(ctx, m)
	td := m.Close(ctx)
	return td, err
}

// powerOn applies the mid-packet policy and switches the supply on.
func (h *Modem) powerOn(ctx context.Context) error {
	power := h.cfg.Power
	midPacket := !h.mark.Until().IsZero()
	switch {
	case power.Configured() && h.opts.NoPowerOn:
		return nil // Close cuts the supply, which also ends a pending send
	case power.Configured() && midPacket:
		h.log.Warn("an earlier window died while the broker held part of a PUBLISH; power-cycling the module so nothing completes it")
		if err := power.powerCycle(ctx); err != nil {
			return stepErr(StepPowerOn, err)
		}
		h.mark.drop(h.log)
		return nil
	case power.Configured():
		if err := runPowerCommand(ctx, "on", power.On); err != nil {
			return stepErr(StepPowerOn, err)
		}
		return stepErr(StepPowerOn, sleepCtx(ctx, power.BootWait))
	case midPacket:
		return stepErr(StepInterrupted, h.mark.await(ctx, h.log))
	}
	return nil
}

// open opens the port and synchronises; a module that does not answer is
// power-cycled once when a power switch is configured.
func (h *Modem) open(ctx context.Context) (*modem.Modem, error) {
	cfg := h.cfg
	open := func() (*modem.Modem, error) {
		port, err := modem.OpenSerial(cfg.Device, cfg.Baud)
		if err != nil {
			return nil, stepErr(StepOpenSerial, err)
		}
		m := modem.New(port, modem.Options{
			Logger:    h.log,
			Trace:     cfg.Trace,
			Secrets:   secrets(cfg),
			SendLimit: cfg.SendLimit,
			QuickSend: !cfg.NormalSend,
		})
		if err := m.Sync(ctx); err != nil {
			m.Close()
			return nil, stepErr(StepSync, err)
		}
		return m, nil
	}
	m, err := open()
	if err == nil || !cfg.Power.Configured() || ctx.Err() != nil {
		return m, err
	}
	if fault.StepOf(err) != StepSync {
		return nil, err
	}
	h.log.Warn("modem does not answer; power-cycling it", "err", err)
	if perr := cfg.Power.powerCycle(ctx); perr != nil {
		return nil, stepErr(StepPowerOn, perr)
	}
	return open()
}

// RadioOn switches the radio on (AT+CFUN=1) and waits for the SIM, which
// is only powered with the radio (after AT+CFUN=0 the module reports
// +CPIN: NOT READY). It returns the SIM state.
func (h *Modem) RadioOn(ctx context.Context) (string, error) {
	if h.radioOn.IsZero() {
		h.radioOn = time.Now()
	}
	if err := h.SetFunctionality(ctx, 1); err != nil {
		return "", stepErr(StepRadioOn, err)
	}
	sim, err := h.waitSIM(ctx)
	return sim, stepErr(StepSIM, err)
}

// simReadyWait bounds the wait for the SIM after CFUN=1 (the manual's
// AT+CPIN? maximum is 5 s; TinyGSM loops for 10 s).
const simReadyWait = 10 * time.Second

func (h *Modem) waitSIM(ctx context.Context) (string, error) {
	deadline := time.Now().Add(simReadyWait)
	for {
		sim, err := h.SIMStatus(ctx)
		if err == nil || ctx.Err() != nil || !time.Now().Before(deadline) {
			return sim, err
		}
		if serr := sleepCtx(ctx, 500*time.Millisecond); serr != nil {
			return sim, err
		}
	}
}

// Dial opens the TCP connection through the module. With guardSplits, a
// Write larger than one chunk marks the module's crash state before each
// later AT+CIPSEND (see # Caveats); TLS needs no guard, since a record
// completed with junk fails its MAC and the broker drops the connection.
func (h *Modem) Dial(ctx context.Context, host string, port int, guardSplits bool) (*modem.Conn, error) {
	conn, err := h.Modem.Dial(ctx, host, port)
	if err != nil {
		return nil, err
	}
	h.conn = conn
	if guardSplits {
		conn.SetSplitWriteHook(func(done bool) error {
			if done {
				return h.mark.clear()
			}
			return h.mark.set(midPacketHold(time.Duration(h.keepAlive.Load())))
		})
	}
	return conn, nil
}

// SetKeepAlive tells the hold the keep-alive the broker enforces (MQTT 5
// Server Keep Alive), on which the mid-packet hold depends.
func (h *Modem) SetKeepAlive(d time.Duration) {
	if d > 0 {
		h.keepAlive.Store(int64(d))
	}
}

// SessionEnded tells the hold how the session on its connection ended:
// clean means DISCONNECT was written, so with a will the teardown waits
// for it to be acknowledged before the quick close (TeardownPlan.DrainConn).
func (h *Modem) SessionEnded(clean bool) { h.cleanEnd = clean }

func (h *Modem) release() {
	h.mark.close()
	_ = h.lock.Release()
}

// SwitchRadioOff leaves the module with its radio off: AT+CFUN=0, or with
// a power switch its supply cut without opening the port. The daemon calls
// it at start-up: the SIM7000 boots with CFUN=1, and a module left on until
// the first window (up to an hour for @hourly) drains the battery. An
// interrupted send a dead window left is honoured as by every holder.
func SwitchRadioOff(ctx context.Context, cfg Config, what string) (Teardown, error) {
	return WithModem(ctx, cfg, HoldOptions{What: what, NoPowerOn: true}, func(context.Context, *Modem) error { return nil })
}
