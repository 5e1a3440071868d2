package uplink

import (
	"cmp"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"strconv"
	"time"

	"github.com/nbiot-uploader/uploader/codec"
	"github.com/nbiot-uploader/uploader/queue"
	"github.com/nbiot-uploader/uploader/uplink/fault"
	"github.com/nbiot-uploader/uploader/uplink/modem"
	"github.com/nbiot-uploader/uploader/uplink/session"
)

// RunWindow runs one window: it drains what is queued through one TCP
// session and one MQTT session, deletes exactly what the broker
// acknowledged, switches the radio off and stores the summary in the queue.
// The summary is valid even when the error is not nil.
//
// Only one window runs per queue file, whatever its transport: a second
// one fails at once with ErrWindowBusy naming the holder. A window that
// did not get the queue or the modem leaves the stored summary of the one
// that did alone and is counted in the queue's window notes instead.
// With nothing queued and Config.EmptyWindow at its default, the window
// does not bring the radio up at all (Outcome "skipped").
func RunWindow(ctx context.Context, cfg Config, q *queue.Queue) (Summary, error) {
	sum := Summary{Start: time.Now(), Transport: cfg.Transport, CSQ: 99}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	w := &window{cfg: cfg, q: q, log: log, sum: &sum}
	err := w.run(ctx)
	sum.End = time.Now()
	sum.DurationSeconds = sum.End.Sub(sum.Start).Seconds()
	switch {
	case errors.Is(err, ErrDeferred):
		sum.Outcome = OutcomeDeferred
		sum.Error = err.Error()
		sum.Step = StepGate
	case err != nil:
		sum.Outcome = OutcomeFailed
		sum.Error = err.Error()
		sum.Step = fault.StepOf(err)
		sum.Class = Classify(err).String()
	case w.skipped != "":
		sum.Outcome = OutcomeSkipped
		sum.Error = w.skipped
	default:
		sum.Outcome = OutcomeOK
	}
	w.record(err)
	return sum, err
}

type window struct {
	cfg     Config
	q       *queue.Queue
	log     *slog.Logger
	sum     *Summary
	skipped string // why the window did not bring the radio up

	base    StatusRecord // the status record's part known before connecting
	budget  budgetDecision
	link    linkFacts
	radioOn time.Time // zero on the TCP transport
}

// radioOnSoFar is the radio time of this window up to now.
func (w *window) radioOnSoFar() float64 {
	if w.radioOn.IsZero() {
		return 0
	}
	return time.Since(w.radioOn).Seconds()
}

func (w *window) run(ctx context.Context) error {
	if err := w.cfg.Validate(); err != nil {
		return stepErr(StepConfig, err)
	}
	lock, err := acquireLock(ctx, windowLockPath(w.q.Path()), ErrWindowBusy, w.cfg.holder(), 0)
	if err != nil {
		return stepErr(StepWindowLock, err)
	}
	defer func() { _ = lock.release() }()
	st, err := w.q.Stats()
	if err != nil {
		return stepErr(StepQueue, err)
	}
	w.sum.Queued = st.Depth
	if st.Depth == 0 && w.cfg.EmptyWindow != EmptyConnect && len(w.cfg.Subscriptions) == 0 {
		w.skipped = "nothing queued (empty windows are skipped; --empty-window connect brings the radio up anyway)"
		w.log.Info("window skipped: nothing queued")
		w.runInboxHook(ctx)
		return nil
	}
	w.base = w.statusBase(st)
	if err := w.budgetGate(time.Now()); err != nil {
		return err
	}
	wctx, cancel := context.WithTimeout(ctx, w.cfg.WindowTimeout)
	defer cancel()
	if w.cfg.Transport == TransportModem {
		err = w.runModem(wctx)
	} else {
		err = w.runTCP(wctx)
	}
	w.runInboxHook(ctx) // the radio is off: runModem has torn down
	if err == nil {
		err = allRefused(w.sum)
	}
	w.budgetSent(err)
	return err
}

// record stores the summary for `uploader status`, or, for a window that
// never got the queue or the modem, only counts it: the stored summary is
// the last window that did something.
func (w *window) record(err error) {
	if w.skipped != "" || errors.Is(err, ErrWindowBusy) || errors.Is(err, ErrModemBusy) {
		reason := "empty"
		if w.skipped == "" {
			reason = "busy"
			w.log.Warn("window not run: another process holds the queue or the modem; the last window's record is left as it is", "err", err)
		}
		if nerr := countSkippedWindow(w.q, reason, w.sum.Start); nerr != nil {
			w.log.Warn("could not count the skipped window", "err", nerr)
		}
		return
	}
	data, jerr := json.Marshal(w.sum)
	if jerr == nil {
		jerr = w.q.PutWindowSummary(data)
	}
	if jerr != nil {
		w.log.Warn("could not store the window summary", "err", jerr)
	}
	if errors.Is(err, ErrInvalidConfig) || errors.Is(err, ErrOverBudget) {
		return // it never started, or never switched the radio on
	}
	if uerr := addUsage(w.q, w.sum); uerr != nil {
		w.log.Warn("could not count the window's usage", "err", uerr)
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

func (w *window) runModem(ctx context.Context) error {
	cfg := w.cfg
	h, err := OpenModem(ctx, cfg, HoldOptions{What: cfg.holder()})
	if err != nil {
		return err
	}
	defer func() {
		td := h.Close(ctx)
		w.sum.RadioOnSeconds = td.RadioOnSeconds
		w.sum.Chunks = td.CIPSends
		if td.Err != nil {
			w.sum.RadioOffError = td.Err.Error()
		}
	}()
	if err := w.readSupply(ctx, h); err != nil {
		return err
	}
	w.radioOn = time.Now()
	if _, err := h.RadioOn(ctx); err != nil {
		return err
	}
	if cfg.NetworkMode != (modem.NetworkMode{}) {
		if err := h.SetNetworkMode(ctx, cfg.NetworkMode); err != nil {
			return stepErr(StepNetworkMode, err)
		}
	}
	// The IP stack's configuration needs no network: done while the module
	// registers, it costs no radio time (StartBearer then only activates).
	if err := h.PrepareBearer(ctx, cfg.APN, cfg.APNUser, cfg.APNPassword); err != nil {
		return stepErr(StepBearer, err)
	}
	reg, err := h.WaitRegistered(ctx, cfg.RegistrationTimeout)
	w.sum.RegistrationSeconds = reg.Waited.Seconds()
	if err != nil {
		if rssi, _, qerr := h.SignalQuality(ctx); qerr == nil {
			w.sum.CSQ = rssi
		}
		return stepErr(StepRegistration, err)
	}
	rssi, _, err := h.SignalQuality(ctx)
	if err != nil {
		return stepErr(StepSignal, err)
	}
	w.sum.CSQ = rssi
	w.log.Info("registered", "via", reg.Via, "technology", reg.Technology, "csq", rssi, "waited", reg.Waited.Round(time.Millisecond))
	if rssi == 99 {
		rssi = 0 // unknown counts as no signal for the gate
	}
	if err := w.gate("CSQ", rssi, cfg.MinCSQ); err != nil {
		return err
	}
	w.endDeferralStreak()
	w.readLinkFacts(ctx, h)

	if _, err := h.StartBearer(ctx, cfg.APN, cfg.APNUser, cfg.APNPassword); err != nil {
		return stepErr(StepBearer, err)
	}
	host, portStr, _ := net.SplitHostPort(cfg.Broker)
	port, _ := strconv.Atoi(portStr)
	conn, err := h.Dial(ctx, host, port, !cfg.TLS.Enabled)
	if err != nil {
		return stepErr(StepTCPConnect, err)
	}
	return w.session(ctx, conn, h)
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

// replyPacer is a connection whose reads cost UART time, told what the
// session awaits (modem.Conn.AwaitReplies).
type replyPacer interface{ AwaitReplies(due int, blocked bool) }

// pacedTLS is TLS over the modem connection that passes the session's
// expectations on to the modem beneath: a bare *tls.Conn hides them, and
// the modem would then read on its fixed PollInterval, late while the
// session is blocked on acknowledgements and needlessly while nothing is
// due. A TLS record split across AT+CIPRXGET reads is reassembled by
// crypto/tls, which reads until the record is whole.
type pacedTLS struct {
	*tls.Conn
	pacer replyPacer
}

// AwaitReplies forwards to the modem connection.
func (c pacedTLS) AwaitReplies(due int, blocked bool) { c.pacer.AwaitReplies(due, blocked) }

// session runs MQTT on conn (optionally wrapped in TLS). held is the modem
// when the connection goes through it, for chunking and the mid-packet
// hold.
func (w *window) session(ctx context.Context, conn net.Conn, held *Modem) error {
	conn, tconn, err := w.secure(ctx, conn, held != nil)
	if err != nil {
		return err
	}
	scfg := w.sessionConfig(held, tconn)
	store, packs := w.store()
	res, err := session.Run(ctx, conn, store, scfg)
	if held != nil {
		held.SessionEnded(err == nil)
	}
	w.rememberBroker(res, err)
	w.downlinkResult(res.Downlink)
	if packs != nil {
		w.log.Info("packed readings", "packs", packs.packs, "readings", packs.packed, "topic", packs.topic)
	}
	w.count(res, held == nil)
	// The session names its own step ("mqtt connect", "mqtt publish", ...);
	// keep that rather than a vaguer one around it.
	if err != nil && fault.StepOf(err) == "" {
		return stepErr(StepMQTT, err)
	}
	return err
}

// secure wraps conn in TLS when configured. Over the modem one session
// write is one record is one CIPSEND, and the modem's reply pacing is
// passed through the TLS layer. The session of the last window is offered
// for resumption, and the ticket this one gets is kept for the next
// (sessioncache.go).
func (w *window) secure(ctx context.Context, conn net.Conn, overModem bool) (net.Conn, *tls.Conn, error) {
	if !w.cfg.TLS.Enabled {
		return conn, nil, nil
	}
	tconn, err := w.cfg.TLS.handshake(ctx, conn, w.cfg.Broker, w.q, w.log, overModem)
	if err != nil {
		return nil, nil, stepErr(StepTLS, err)
	}
	cs := tconn.ConnectionState()
	w.sum.TLS = TLSFull
	if cs.DidResume {
		w.sum.TLS = TLSResumed
	}
	w.log.Info("tls handshake", "version", tls.VersionName(cs.Version), "key_exchange", cs.CurveID.String(), "resumed", cs.DidResume)
	if p, ok := conn.(replyPacer); ok {
		return pacedTLS{tconn, p}, tconn, nil
	}
	return tconn, tconn, nil
}

// sessionConfig is the MQTT session of this window: the broker, the
// status record and will, the modem's chunk size and the downlink.
func (w *window) sessionConfig(held *Modem, tconn *tls.Conn) session.Config {
	cfg := w.cfg
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
		Will:         w.will(w.base),
		Prior:        w.priorConnack(),
	}
	if cfg.StatusTopic != "" {
		scfg.Status = w.statusMessage(w.base)
	}
	if held != nil {
		scfg.ChunkSize = held.conn.MaxChunk()
		if tconn != nil {
			// Each session write becomes one TLS record; leave room for its
			// header, tag and padding so the record fits one CIPSEND.
			scfg.ChunkSize -= tlsRecordOverhead(tconn.ConnectionState().Version)
		}
		scfg.OnConnack = func(c codec.Connack) {
			if c.HasServerKeepAlive {
				held.SetKeepAlive(time.Duration(c.ServerKeepAlive) * time.Second)
			}
		}
	}
	if cfg.Progress != nil {
		queued := int(w.sum.Queued)
		scfg.Progress = func(p session.Progress) {
			cfg.Progress(Progress{Queued: queued, Sent: p.Sent, Acked: p.Acked, BytesOut: p.BytesOut, Elapsed: time.Since(w.sum.Start)})
		}
	}
	w.downlink(&scfg)
	return scfg
}

// store is what the session reads records from: the queue, or packs of
// its readings (--pack deflate, or a data budget whose forecast is over),
// or nothing but the status record (a budget that is spent); deliveries
// go to the queue's inbox either way.
func (w *window) store() (session.Store, *packStore) {
	qs := queueStore{q: w.q, inboxMax: w.cfg.InboxMaxBytes}
	switch {
	case w.budget.statusOnly():
		return statusOnlyStore{}, nil
	case w.cfg.Pack != PackDeflate && !w.budget.pack():
		return qs, nil
	}
	topic := cmp.Or(w.cfg.PackTopic, "uploader/"+w.cfg.ClientID+"/pack")
	packs := newPackStore(w.q, w.cfg.ClientID, topic, cmp.Or(w.cfg.PackMaxBytes, DefaultPackMaxBytes), w.log)
	packs.inbound = qs
	return packs, packs
}

// count copies what the session did into the summary.
func (w *window) count(res session.Result, countWrites bool) {
	w.sum.Sent = res.Sent
	w.sum.Acked = res.Acked
	w.sum.Skipped = res.Skipped
	w.sum.Refused = res.Rejected
	w.sum.Quarantined = res.Quarantined
	w.sum.StatusSent = res.StatusAcked
	w.sum.MQTTBytesOut = res.BytesOut
	w.sum.MQTTBytesIn = res.BytesIn
	if countWrites {
		w.sum.Chunks = res.Writes
	}
}
