package uplink

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/nbiot-uploader/uploader/codec"
	"github.com/nbiot-uploader/uploader/queue"
	"github.com/nbiot-uploader/uploader/uplink/modem"
	"github.com/nbiot-uploader/uploader/uplink/session"
)

// Window steps, as named in errors and in the stored summary.
const (
	StepModemLock    = "modem lock"
	StepInterrupted  = "interrupted send" // an earlier window died mid-PUBLISH
	StepPowerOn      = "power on"
	StepOpenSerial   = "open serial port"
	StepSync         = "modem sync"
	StepRadioOn      = "radio on"
	StepSIM          = "SIM check"
	StepNetworkMode  = "network mode"
	StepRegistration = "registration"
	StepSignal       = "signal quality"
	StepBearer       = "bearer"
	StepTCPConnect   = "tcp connect"
	StepTLS          = "tls handshake"
	StepMQTT         = "mqtt session" // or the session's own, finer step (session.StepConnect ...)
	StepTCPClose     = "tcp close"
	StepQueue        = "queue"
)

// StepError names the step of the window that failed.
type StepError struct {
	Step string
	Err  error
}

func (e *StepError) Error() string { return e.Step + ": " + e.Err.Error() }
func (e *StepError) Unwrap() error { return e.Err }

func stepErr(step string, err error) error {
	if err == nil {
		return nil
	}
	var se *StepError
	if errors.As(err, &se) && se.Step == step {
		return err
	}
	return &StepError{Step: step, Err: err}
}

// radioOffBudget is how long the teardown (closing the connection, then
// switching the radio off) may take in all, even after the window's own
// deadline has passed or SIGTERM arrived: leaving the radio on would drain
// the battery until the next window, so it gets time of its own — one
// budget shared by every teardown step, so a hung module cannot stretch it.
const radioOffBudget = 15 * time.Second

// simReadyWait bounds the wait for the SIM after CFUN=1 (the manual's
// AT+CPIN? maximum is 5 s; TinyGSM loops for 10 s).
const simReadyWait = 10 * time.Second

// RunWindow runs one window: it drains what is queued through one TCP
// session and one MQTT session, deletes exactly what the broker
// acknowledged, switches the radio off and stores the summary in the queue.
// The summary is valid even when the error is not nil.
func RunWindow(ctx context.Context, cfg Config, q *queue.Queue) (Summary, error) {
	sum := Summary{Start: time.Now(), Transport: cfg.Transport, CSQ: 99}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	err := cfg.Validate()
	if err == nil {
		var st queue.Stats
		st, err = q.Stats()
		sum.Queued = st.Depth
		err = stepErr(StepQueue, err)
	}
	if err == nil {
		wctx, cancel := context.WithTimeout(ctx, cfg.WindowTimeout)
		w := &window{cfg: cfg, q: q, log: log, sum: &sum, start: sum.Start}
		switch cfg.Transport {
		case TransportModem:
			err = w.runModem(wctx)
		default:
			err = w.runTCP(wctx)
		}
		w.endTeardown()
		cancel()
		if err == nil {
			err = allRefused(&sum)
		}
	}
	sum.End = time.Now()
	sum.DurationSeconds = sum.End.Sub(sum.Start).Seconds()
	sum.Outcome = OutcomeOK
	if err != nil {
		sum.Outcome = OutcomeFailed
		sum.Error = err.Error()
		var se *StepError
		if errors.As(err, &se) {
			sum.Step = se.Step
		}
	}
	if data, jerr := json.Marshal(sum); jerr == nil {
		if perr := q.PutWindowSummary(data); perr != nil {
			log.Warn("could not store the window summary", "err", perr)
		}
	}
	return sum, err
}

type window struct {
	cfg   Config
	q     *queue.Queue
	log   *slog.Logger
	sum   *Summary
	start time.Time
	lock  *ModemLock // nil on the TCP transport

	teardownCtx    context.Context
	teardownCancel context.CancelFunc
}

// teardown is the context every teardown step shares: radioOffBudget from
// the first step on, detached from the window's cancellation.
func (w *window) teardown(ctx context.Context) context.Context {
	if w.teardownCtx == nil {
		w.teardownCtx, w.teardownCancel = context.WithTimeout(context.WithoutCancel(ctx), radioOffBudget)
	}
	return w.teardownCtx
}

func (w *window) endTeardown() {
	if w.teardownCancel != nil {
		w.teardownCancel()
	}
}

func (w *window) runTCP(ctx context.Context) error {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", w.cfg.Broker)
	if err != nil {
		return stepErr(StepTCPConnect, err)
	}
	defer conn.Close()
	return w.session(ctx, conn, nil)
}

func (w *window) runModem(ctx context.Context) (err error) {
	cfg := w.cfg
	lock, err := AcquireModemLock(ctx, cfg.LockPath, "uploader window", cfg.ModemLockTimeout)
	if err != nil {
		return stepErr(StepModemLock, err)
	}
	defer lock.Release()
	w.lock = lock

	midPacket := !lock.MidPacketUntil().IsZero()
	switch {
	case cfg.Power.Configured() && midPacket:
		w.log.Warn("an earlier window died while the broker held part of a PUBLISH; power-cycling the module so nothing completes it")
		if err := cfg.Power.powerCycle(ctx); err != nil {
			return stepErr(StepPowerOn, err)
		}
		w.lock.dropMidPacket(w.log)
	case cfg.Power.Configured():
		if err := runPowerCommand(ctx, "on", cfg.Power.On); err != nil {
			return stepErr(StepPowerOn, err)
		}
		if err := sleepCtx(ctx, cfg.Power.BootWait); err != nil {
			return stepErr(StepPowerOn, err)
		}
	case midPacket:
		if err := lock.AwaitMidPacket(ctx, w.log); err != nil {
			return stepErr(StepInterrupted, err)
		}
	}
	// splitCut is set when the session stopped in the middle of a PUBLISH
	// larger than one chunk without the module's prompt (see
	// modem.ErrSplitWriteCut): from then on the module is sent nothing the
	// broker could take as the rest of that PUBLISH.
	splitCut := false
	if cfg.Power.Configured() {
		defer func() {
			// Cutting the supply is the last resort: it gets its own time
			// even when the shared teardown budget is spent.
			offCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), powerCommandTimeout)
			defer cancel()
			if perr := runPowerCommand(offCtx, "off", cfg.Power.Off); perr != nil {
				w.log.Error("power off failed", "err", perr)
				w.sum.RadioOffError = perr.Error()
			} else if splitCut {
				w.lock.dropMidPacket(w.log)
			}
		}()
	}

	m, err := w.openModem(ctx)
	if err != nil {
		return err
	}
	defer m.Close()

	radioOn := time.Now()
	// Everything from here on runs with the radio possibly on: switch it
	// off whatever happens, with a budget of its own.
	defer func() {
		offCtx := w.teardown(ctx)
		switch {
		case splitCut && cfg.Power.Configured():
			w.log.Warn("the module may be waiting for the rest of a PUBLISH; cutting its power without a word")
		case splitCut:
			w.radioOffAfterSplitCut(ctx, m)
		case cfg.Power.Configured():
			if perr := m.PowerDown(offCtx); perr != nil {
				w.log.Warn("AT+CPOWD=1 failed; cutting power anyway", "err", perr)
			}
		default:
			if ferr := m.SetFunctionality(offCtx, 0); ferr != nil {
				w.log.Error("radio off (AT+CFUN=0) failed", "err", ferr)
				w.sum.RadioOffError = ferr.Error()
			}
		}
		w.sum.RadioOnSeconds = time.Since(radioOn).Seconds()
		w.sum.Chunks = int(m.Stats().CIPSends)
	}()

	// The SIM is only powered with the radio (after AT+CFUN=0 the module
	// reports +CPIN: NOT READY), so the radio goes on before the SIM check.
	if err := m.SetFunctionality(ctx, 1); err != nil {
		return stepErr(StepRadioOn, err)
	}
	if err := w.waitSIM(ctx, m); err != nil {
		return stepErr(StepSIM, err)
	}
	if cfg.NetworkMode != (modem.NetworkMode{}) {
		if err := m.SetNetworkMode(ctx, cfg.NetworkMode); err != nil {
			return stepErr(StepNetworkMode, err)
		}
	}
	reg, err := m.WaitRegistered(ctx, cfg.RegistrationTimeout)
	w.sum.RegistrationSeconds = reg.Waited.Seconds()
	if err != nil {
		if rssi, _, qerr := m.SignalQuality(ctx); qerr == nil {
			w.sum.CSQ = rssi
		}
		return stepErr(StepRegistration, err)
	}
	rssi, _, err := m.SignalQuality(ctx)
	if err != nil {
		return stepErr(StepSignal, err)
	}
	w.sum.CSQ = rssi
	w.log.Info("registered", "via", reg.Via, "technology", reg.Technology, "csq", rssi, "waited", reg.Waited.Round(time.Millisecond))

	if _, err := m.StartBearer(ctx, cfg.APN, cfg.APNUser, cfg.APNPassword); err != nil {
		return stepErr(StepBearer, err)
	}
	host, portStr, _ := net.SplitHostPort(cfg.Broker)
	port, _ := strconv.Atoi(portStr)
	conn, err := m.Dial(ctx, host, port)
	if err != nil {
		return stepErr(StepTCPConnect, err)
	}
	err = w.session(ctx, conn, conn)
	if conn.SplitWriteCut() {
		splitCut = true
		return err // no AT+CIPCLOSE: it could be the rest of the PUBLISH
	}
	cerr := conn.CloseContext(w.teardown(ctx))
	if cerr == nil {
		// The broker has dropped whatever part of a packet it held.
		w.lock.dropMidPacket(w.log)
	}
	if err == nil && cerr != nil {
		// Everything acknowledged is already deleted; a failed close only
		// costs the module's clean-up, which AT+CFUN=0 does anyway.
		w.log.Warn("closing the modem connection failed", "err", cerr)
	}
	return err
}

// tlsRecordOverhead is the most a TLS record adds to its payload: TLS 1.3
// AEAD 5 + 16 + 1 bytes; TLS 1.2 up to 5 + 16 IV + 32 MAC + 16 padding
// (CBC with SHA-256).
func tlsRecordOverhead(version uint16) int {
	if version == tls.VersionTLS13 {
		return 22
	}
	return 69
}

// midPacketHold is how long after a chunk of a split PUBLISH the broker
// may keep the connection. MQTT has it close a connection that sent no
// whole packet for 1.5 times the keep-alive, but brokers check coarsely:
// mosquitto 2.0.11 (Debian 12) looks every 5-6 s, and with a keep-alive of
// 4 s it dropped an idle client after 11-12 s, not 6 s. The 10 s cover
// that; half the keep-alive more (at most 30 s) covers data the module
// still had queued, which the broker may count as activity (mosquitto
// restarts the keep-alive when part of a large packet arrives).
func midPacketHold(keepAlive time.Duration) time.Duration {
	return keepAlive*3/2 + 10*time.Second + min(keepAlive/2, 30*time.Second)
}

// guardSplitWrites records in the modem lock, before each AT+CIPSEND of a
// PUBLISH larger than one chunk, until when the broker may hold part of it;
// see ModemLock.AwaitMidPacket. TLS needs no guard: a record completed with junk
// fails its MAC and the broker closes the connection.
func (w *window) guardSplitWrites(conn *modem.Conn, scfg *session.Config) {
	var keepAlive atomic.Int64
	keepAlive.Store(int64(w.cfg.KeepAlive) * int64(time.Second))
	scfg.OnConnack = func(c codec.Connack) {
		if c.HasServerKeepAlive && c.ServerKeepAlive > 0 {
			keepAlive.Store(int64(c.ServerKeepAlive) * int64(time.Second))
		}
	}
	conn.SetSplitWriteHook(func(done bool) error {
		if done {
			return w.lock.clearMidPacket()
		}
		return w.lock.markMidPacket(midPacketHold(time.Duration(keepAlive.Load())))
	})
}

// radioOffAfterSplitCut switches the radio off when the module may be
// waiting for the rest of a PUBLISH the broker holds part of, and no power
// switch can reset it: it first waits until the broker has dropped the
// connection (ModemLock.AwaitMidPacket), then resynchronises (the probes and
// filler complete the module's send into a closed connection) and sends
// AT+CFUN=0. That can hold the radio on past the window's deadline, by up
// to twice the keep-alive; a corrupted reading would cost more.
func (w *window) radioOffAfterSplitCut(ctx context.Context, m *modem.Modem) {
	wait := time.Until(w.lock.MidPacketUntil())
	w.log.Warn("the module may be waiting for the rest of a PUBLISH; keeping the radio on until the broker has dropped the connection",
		"wait", wait.Round(time.Second))
	offCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), max(wait, 0)+radioOffBudget)
	defer cancel()
	err := w.lock.AwaitMidPacket(offCtx, w.log)
	if err == nil {
		err = m.Sync(offCtx)
	}
	if err == nil {
		err = m.SetFunctionality(offCtx, 0)
	}
	if err != nil {
		w.log.Error("radio off after an interrupted PUBLISH failed", "err", err)
		w.sum.RadioOffError = err.Error()
	}
}

// openModem opens the port and synchronises; a module that does not answer
// is power-cycled once when a power switch is configured.
func (w *window) openModem(ctx context.Context) (*modem.Modem, error) {
	cfg := w.cfg
	open := func() (*modem.Modem, error) {
		port, err := modem.OpenSerial(cfg.Device, cfg.Baud)
		if err != nil {
			return nil, stepErr(StepOpenSerial, err)
		}
		m := modem.New(port, modem.Options{
			Logger:    w.log,
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
	var se *StepError
	if !errors.As(err, &se) || se.Step != StepSync {
		return nil, err
	}
	w.log.Warn("modem does not answer; power-cycling it", "err", err)
	if perr := cfg.Power.powerCycle(ctx); perr != nil {
		return nil, stepErr(StepPowerOn, perr)
	}
	return open()
}

func secrets(cfg Config) [][]byte {
	var s [][]byte
	if cfg.APNPassword != "" {
		s = append(s, []byte(cfg.APNPassword))
	}
	if len(cfg.Password) > 0 {
		s = append(s, cfg.Password)
	}
	return s
}

func (w *window) waitSIM(ctx context.Context, m *modem.Modem) error {
	deadline := time.Now().Add(simReadyWait)
	for {
		_, err := m.SIMStatus(ctx)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil || !time.Now().Before(deadline) {
			return err
		}
		if serr := sleepCtx(ctx, 500*time.Millisecond); serr != nil {
			return err
		}
	}
}

// session runs MQTT on conn (optionally wrapped in TLS). acker is the modem
// connection when there is one, for chunk accounting.
func (w *window) session(ctx context.Context, conn net.Conn, modemConn *modem.Conn) error {
	cfg := w.cfg
	if cfg.TLS.Enabled {
		tcfg, err := cfg.TLS.clientConfig(cfg.Broker)
		if err != nil {
			return stepErr(StepTLS, err)
		}
		if modemConn != nil {
			// One session write, one record, one CIPSEND (see below);
			// Go otherwise starts with records of about 1.2 KB.
			tcfg.DynamicRecordSizingDisabled = true
		}
		tconn := tls.Client(conn, tcfg)
		if err := tconn.HandshakeContext(ctx); err != nil {
			return stepErr(StepTLS, err)
		}
		conn = tconn
	}
	scfg := session.Config{
		Version:      cfg.MQTTVersion,
		ClientID:     cfg.ClientID,
		CleanStart:   true,
		KeepAlive:    cfg.KeepAlive,
		Username:     cfg.Username,
		Password:     cfg.Password,
		InFlight:     cfg.InFlight,
		ReplyTimeout: cfg.ReplyTimeout,
		TopicAliases: true,
		SeqProperty:  !cfg.NoSeq,
		MaxRecords:   cfg.MaxRecords,
		Logger:       w.log,
	}
	if modemConn != nil {
		scfg.ChunkSize = modemConn.MaxChunk()
		if tconn, ok := conn.(*tls.Conn); ok {
			// Each session write becomes one TLS record; leave room for its
			// header, tag and padding so the record fits one CIPSEND.
			scfg.ChunkSize -= tlsRecordOverhead(tconn.ConnectionState().Version)
		} else if w.lock != nil {
			w.guardSplitWrites(modemConn, &scfg)
		}
	}
	if cfg.Progress != nil {
		queued := int(w.sum.Queued)
		scfg.Progress = func(p session.Progress) {
			cfg.Progress(Progress{Queued: queued, Sent: p.Sent, Acked: p.Acked, BytesOut: p.BytesOut, Elapsed: time.Since(w.start)})
		}
	}
	res, err := session.Run(ctx, conn, queueStore{w.q}, scfg)
	w.sum.Sent = res.Sent
	w.sum.Acked = res.Acked
	w.sum.Skipped = res.Skipped
	w.sum.Refused = res.Rejected
	w.sum.Quarantined = res.Quarantined
	w.sum.MQTTBytesOut = res.BytesOut
	w.sum.MQTTBytesIn = res.BytesIn
	if modemConn == nil {
		w.sum.Chunks = res.Writes
	}
	if err != nil {
		// The session already names its step ("mqtt connect", "mqtt
		// publish", ...); keep that rather than a vaguer one around it.
		var sse *session.StepError
		if errors.As(err, &sse) {
			return &StepError{Step: sse.Step, Err: sse.Err}
		}
		return stepErr(StepMQTT, err)
	}
	return nil
}
