package modem

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Conn is the module's single TCP connection. Writes become AT+CIPSEND
// chunks of at most MaxChunk bytes, sent in binary; reads use manual
// receive (AT+CIPRXGET). Read and Write may run in two goroutines: each
// AT exchange holds the UART alone, so reads slip in between chunks.
type Conn struct {
	m        *Modem
	maxChunk int
	local    net.Addr
	remote   net.Addr

	readMu   sync.Mutex // one Read at a time
	rbuf     []byte     // payload fetched but not yet returned
	left     int        // bytes the module still buffers, from the last CIPRXGET=2
	lastPoll time.Time
	opened   time.Time // CONNECT OK: the paced reads count from it until the first one
	drained  bool      // after CLOSED: the module's buffer is empty too

	// Receive pacing once a session has called AwaitReplies (see there).
	hinted    atomic.Bool
	due       atomic.Int32
	blocked   atomic.Bool
	firstSent atomic.Int64  // UnixNano of the first Write's end, for the round trip
	rtt       time.Duration // observed round trip; 0 until measured
	connectRT time.Duration // AT+CIPSTART to CONNECT OK: the TCP handshake's round trip, an estimate until rtt is measured
	cost      time.Duration // cheapest receive exchange so far, AT command to OK: what one poll costs
	urcSeen   bool          // a "+CIPRXGET: 1" not yet acted on
	noDirect  bool          // the module refused AT+CIPRXGET=2 on an empty buffer

	writeMu   sync.Mutex // one Write at a time, so chunks are not interleaved
	broken    error      // a send left the module in an unknown state
	splitHook func(done bool) error
	splitCut  atomic.Bool // see SplitWriteCut

	dlMu          sync.Mutex
	readDeadline  time.Time
	writeDeadline time.Time

	closeOnce sync.Once
	closed    chan struct{}
	closeErr  error
}

var _ net.Conn = (*Conn)(nil)

// MaxChunk returns the bytes per AT+CIPSEND in effect: the module's
// AT+CIPSEND? answer, lowered by Options.SendLimit, at most 1460.
func (c *Conn) MaxChunk() int { return c.maxChunk }

// LocalAddr is the bearer address from AT+CIFSR (port unknown: 0).
func (c *Conn) LocalAddr() net.Addr { return c.local }

// RemoteAddr is the dialled host and port.
func (c *Conn) RemoteAddr() net.Addr { return c.remote }

// SetDeadline sets both deadlines.
func (c *Conn) SetDeadline(t time.Time) error {
	c.dlMu.Lock()
	c.readDeadline, c.writeDeadline = t, t
	c.dlMu.Unlock()
	c.m.poke()
	return nil
}

// SetReadDeadline bounds pending and future Reads; the error is a timeout
// matching os.ErrDeadlineExceeded and ErrTimeout.
func (c *Conn) SetReadDeadline(t time.Time) error {
	c.dlMu.Lock()
	c.readDeadline = t
	c.dlMu.Unlock()
	c.m.poke()
	return nil
}

// SetWriteDeadline bounds pending and future Writes. A chunk whose prompt
// already arrived is completed regardless: abandoning it would leave the
// module waiting for payload and turn the next command into data.
func (c *Conn) SetWriteDeadline(t time.Time) error {
	c.dlMu.Lock()
	c.writeDeadline = t
	c.dlMu.Unlock()
	return nil
}

func (c *Conn) deadlines() (read, write time.Time) {
	c.dlMu.Lock()
	defer c.dlMu.Unlock()
	return c.readDeadline, c.writeDeadline
}

func (c *Conn) isClosed() bool {
	select {
	case <-c.closed:
		return true
	default:
		return false
	}
}

// opContext bounds one exchange by the Conn deadline; its cause marks the
// deadline so the error matches os.ErrDeadlineExceeded.
func opContext(deadline time.Time) (context.Context, context.CancelFunc) {
	if deadline.IsZero() {
		return context.WithCancel(context.Background())
	}
	return context.WithDeadlineCause(context.Background(), deadline, errDeadline)
}

// SplitWriteCut reports that a Write larger than MaxChunk stopped between
// two chunks while the module may be waiting for payload (ErrSplitWriteCut):
// the peer holds part of that Write, and whatever the module hears next
// would complete it. Do not send the module anything (not even Close's
// AT+CIPCLOSE) until the peer has dropped the connection or the module was
// power-cycled.
func (c *Conn) SplitWriteCut() bool { return c.splitCut.Load() }

// SetSplitWriteHook installs fn for Writes larger than MaxChunk, whose
// bytes go out in several AT+CIPSENDs: between them the peer holds part of
// the Write, and whatever the module hears next completes it should this
// process die. fn(false) runs before each of those chunks but the first,
// once the peer holds part of the Write (an error stops the Write before
// that chunk), fn(true) once the whole Write is accepted.
// Call it before the first Write.
func (c *Conn) SetSplitWriteHook(fn func(done bool) error) { c.splitHook = fn }

// Write sends b in chunks of at most MaxChunk bytes. It returns the bytes
// the module accepted before an error. A Write of at most MaxChunk bytes is
// one AT+CIPSEND, so the peer gets all of it or none of it.
func (c *Conn) Write(b []byte) (int, error) {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	mask := c.m.trace.mask(b)
	split := len(b) > c.maxChunk && c.splitHook != nil
	written := 0
	for written < len(b) {
		if c.isClosed() {
			return written, stepErr("write", net.ErrClosed)
		}
		if c.broken != nil {
			return written, stepErr("write", c.broken)
		}
		if err := c.m.connFatal(); err != nil {
			return written, stepErr("write", err)
		}
		_, dl := c.deadlines()
		if !dl.IsZero() && !time.Now().Before(dl) {
			return written, stepErr("write", errDeadline)
		}
		if split && written > 0 {
			if err := c.splitHook(false); err != nil {
				return written, stepErr("write", err)
			}
		}
		n := min(len(b)-written, c.maxChunk)
		var chunkMask []bool
		if mask != nil {
			chunkMask = mask[written : written+n]
		}
		ctx, cancel := opContext(dl)
		err := c.m.sendChunk(ctx, b[written:written+n], chunkMask, written > 0)
		cancel()
		if errors.Is(err, ErrSplitWriteCut) {
			c.splitCut.Store(true)
		}
		if err != nil {
			var be *brokenError
			if errors.As(err, &be) {
				c.broken = be.err
			}
			return written, err
		}
		written += n
	}
	if split {
		// The Write is whole at the peer; a failure to record that only
		// makes the next process wait needlessly.
		_ = c.splitHook(true)
	}
	c.firstSent.CompareAndSwap(0, time.Now().UnixNano())
	return written, nil
}

// brokenError marks a send failure after which the module's input state
// is unknown; the connection must not be used for more data.
type brokenError struct{ err error }

func (e *brokenError) Error() string { return e.err.Error() }
func (e *brokenError) Unwrap() error { return e.err }

// sendChunk runs one AT+CIPSEND=<n> exchange: command, "> " prompt, the
// raw bytes, then DATA ACCEPT:<n> (quick send) or SEND OK. continued says
// the peer already holds the first part of this Write.
func (m *Modem) sendChunk(ctx context.Context, chunk []byte, mask []bool, continued bool) error {
	const step = "AT+CIPSEND"
	if err := m.acquire(ctx); err != nil {
		return stepErr(step, err)
	}
	defer m.release()
	if err := m.stalledErr(); err != nil {
		return stepErr(step, &brokenError{err})
	}
	cmd := "AT+CIPSEND=" + strconv.Itoa(len(chunk))
	err := m.exchangeLocked(ctx, cmd, promptTimeout, func(ev event) (bool, error) {
		if ev.kind == evPrompt {
			return true, nil
		}
		if ev.kind != evLine {
			return false, nil
		}
		return sendFailure(ev.line)
	})
	if err != nil {
		if continued && !moduleRefused(err) {
			// No prompt and no refusal (a timeout, a cancelled context): the
			// module may be waiting for payload. Filler would complete the
			// peer's half-received Write with junk it might accept (the tail
			// of a PUBLISH payload, say), so the module is left as it is;
			// whatever the caller sends next may be taken as payload too.
			return stepErr(step, &brokenError{fmt.Errorf("%w: no prompt: %w", ErrSplitWriteCut, err)})
		}
		if errors.Is(err, ErrTimeout) {
			// The prompt may still come, and the module would then take
			// the next command as payload. Exactly len(chunk) filler bytes
			// complete such a send (the peer gets junk at a write boundary
			// on a connection we abandon anyway); the CR ends them as a
			// garbage command line if the module was not waiting for data
			// after all.
			filler := make([]byte, len(chunk)+1)
			filler[len(chunk)] = '\r'
			m.trace.line("out", "<filler after a lost prompt>")
			_ = m.send(context.Background(), filler)
			return stepErr(step, &brokenError{fmt.Errorf("no prompt: %w", err)})
		}
		return stepErr(step, err)
	}
	m.trace.dataMasked("out", chunk, mask)
	// Past the prompt the module counts bytes: the payload is written
	// whatever the caller's deadline says.
	sent, heard := time.Now(), m.heard.Load()
	if err := m.send(context.Background(), chunk); err != nil {
		return stepErr(step, &brokenError{err})
	}
	// Quick send answers as soon as the module buffered the chunk, so its
	// answer is awaited whatever the deadline: giving up would leave the
	// caller unsure whether to resend bytes the peer may already have.
	// SEND OK can take a network round trip (or 645 s on a dead link), so
	// the deadline applies and a miss leaves the connection unusable.
	timeout, finalCtx := sendOKTimeout, ctx
	if m.opts.QuickSend {
		timeout, finalCtx = acceptTimeout, context.Background()
	}
	final := commonHandler(cmd, func(ev event) (bool, error) {
		if ev.kind != evLine {
			return false, nil
		}
		if ev.line == "SEND OK" {
			return true, nil
		}
		if n, ok := parseDataAccept(ev.line); ok {
			if n != len(chunk) {
				return true, fmt.Errorf("%w: DATA ACCEPT:%d for %d bytes", ErrProtocol, n, len(chunk))
			}
			return true, nil
		}
		return sendFailure(ev.line)
	})
	// DATA ACCEPT needs no network, so it comes at once: a module silent
	// for stallEvidence after the payload has hung, and waiting out the
	// rest of acceptTimeout (holding the UART) would take that time from
	// the teardown. A module that says anything at all gets the rest.
	wait := timeout
	if m.opts.QuickSend {
		wait = min(timeout, stallEvidence)
	}
	err = m.await(finalCtx, wait, final)
	if errors.Is(err, ErrTimeout) && wait < timeout && m.heard.Load() != heard {
		err = m.await(finalCtx, timeout-wait, final)
	}
	m.noteAbandoned(cmd, sent, timeout, err, finalCtx.Err() != nil)
	if errors.Is(err, ErrRebooted) {
		m.clearCommandLine()
	}
	if errors.Is(err, ErrTimeout) {
		return stepErr(step, &brokenError{fmt.Errorf("chunk outcome unknown: %w", err)})
	}
	if err != nil {
		return stepErr(step, err)
	}
	m.stats.chunk(len(chunk))
	return nil
}

// clearCommandLine runs after the module restarted between the prompt and
// the answer of a CIPSEND: the payload went into the fresh module's
// command line, which then holds a partial line (or one past the 556
// characters it accepts) that would swallow the next command, typically
// the radio-off. A CR ends that line; the AT that follows is answered
// after whatever the module says to the junk, so once its OK is in, the
// next answer belongs to the next command. Called with the UART held.
func (m *Modem) clearCommandLine() {
	m.trace.line("out", "<CR after a payload lost to a reboot>")
	ctx, cancel := context.WithTimeout(context.Background(), shortTimeout)
	defer cancel()
	if err := m.send(ctx, []byte{'\r'}); err != nil {
		m.log.Warn("could not end the command line after a reboot", "err", err)
		return
	}
	err := m.exchangeLocked(ctx, "AT", shortTimeout, func(ev event) (bool, error) {
		// The junk line may be answered ERROR (or echoed): only OK ends.
		return ev.kind == evLine && ev.line == "OK", nil
	})
	if err != nil {
		m.log.Warn("no answer after a reboot during a send", "err", err)
	}
}

// sendFailure maps the lines that end a send unsuccessfully.
// moduleRefused reports whether err is the module's own answer to a
// command (ERROR, SEND FAIL, a lost connection or bearer, a reboot), after
// which it is surely not waiting for payload.
func moduleRefused(err error) bool {
	var cme *CMEError
	return errors.As(err, &cme) || errors.Is(err, ErrCommand) || errors.Is(err, ErrSendFail) ||
		errors.Is(err, ErrRemoteClosed) || errors.Is(err, ErrPDPDeact) || errors.Is(err, ErrRebooted)
}

func sendFailure(line string) (bool, error) {
	switch line {
	case "SEND FAIL":
		return true, ErrSendFail
	case urcClosed:
		return true, ErrRemoteClosed
	case urcPDPDeact:
		return true, ErrPDPDeact
	}
	if err := parseError(line); err != nil {
		return true, err
	}
	return false, nil
}

// connFatal returns the fatal condition announced since Dial, if any.
func (m *Modem) connFatal() error {
	m.connMu.Lock()
	defer m.connMu.Unlock()
	return m.connErr
}

func (m *Modem) takeRxPending() bool {
	m.connMu.Lock()
	defer m.connMu.Unlock()
	p := m.rxPending
	m.rxPending = false
	return p
}

// Read returns received bytes. It asks the module when "+CIPRXGET: 1"
// announces data and, because modules forget to, every PollInterval.
// After "CLOSED" it still returns what the module buffered, then an error
// matching ErrRemoteClosed and io.EOF. After "+PDP: DEACT" or a reboot the
// buffer is gone and the error comes at once.
func (c *Conn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	c.readMu.Lock()
	defer c.readMu.Unlock()
	for {
		if len(c.rbuf) > 0 {
			n := copy(p, c.rbuf)
			c.rbuf = c.rbuf[n:]
			return n, nil
		}
		if c.isClosed() {
			return 0, stepErr("read", net.ErrClosed)
		}
		fatal := c.m.connFatal()
		switch {
		case errors.Is(fatal, ErrRemoteClosed) && c.drained:
			return 0, stepErr("read", fmt.Errorf("%w: %w", ErrRemoteClosed, io.EOF))
		case fatal != nil && !errors.Is(fatal, ErrRemoteClosed):
			return 0, stepErr("read", fatal)
		}
		dl, _ := c.deadlines()
		if !dl.IsZero() && !time.Now().Before(dl) {
			return 0, stepErr("read", errDeadline)
		}
		pending := c.m.takeRxPending()
		if !c.hinted.Load() {
			if pending || c.left > 0 || fatal != nil || time.Since(c.lastPoll) >= c.m.opts.PollInterval {
				if err := c.fetch(dl, fatal != nil, false); err != nil {
					return 0, err
				}
				continue
			}
			if err := c.wait(dl, c.m.opts.PollInterval-time.Since(c.lastPoll)); err != nil {
				return 0, err
			}
			continue
		}
		c.urcSeen = c.urcSeen || pending
		next := c.nextPoll()
		if c.left > 0 || fatal != nil || !time.Now().Before(next) {
			if err := c.fetch(dl, fatal != nil, !c.noDirect); err != nil {
				return 0, err
			}
			continue
		}
		if err := c.wait(dl, time.Until(next)); err != nil {
			return 0, err
		}
	}
}

// Receive pacing (AwaitReplies). Every AT+CIPRXGET exchange holds the UART
// for the module's turnaround plus its bytes (about 55 ms on a SIM7000 at
// 115200 baud), time the next chunk waits for, so reads are spaced to keep
// their share of the UART small, and are made only while replies are due:
//
//   - nothing due: only "+CIPRXGET: 1" starts a read, plus a safety poll
//     every safetyPoll in case the module never announces (a broker's
//     DISCONNECT, say);
//   - replies due, the session still sending: a read every 1.5 round trips
//     (the window is sized to cover them, see session.Config.InFlight), the
//     announcement does not hurry it: acknowledgements are read in batches;
//   - the session blocked on a reply: a read as soon as "+CIPRXGET: 1"
//     comes (at once when that one reply holds everything up, as with a
//     Receive Maximum of 1; else minPollGap after the last read),
//     otherwise every quarter round trip, so a module that never
//     announces costs at most a quarter round trip per wait.
//
// Each interval is at least minPollGap and costFactor (blocked:
// blockedCostFactor) times the cheapest exchange so far (what a poll
// costs, not the payload a read carries), which bounds the receive
// side's share of the UART to 1/costFactor while streaming whatever the
// round trip. Once data is found, the module's "<left>" count is read out
// at once. The round trip is the time from the end of the first Write
// (CONNECT, and the records pipelined behind it) to its first reply bytes:
// the only exchange whose send instant is unambiguous, since every later
// reply answers one of several pipelined chunks. Until it is known, the
// time AT+CIPSTART took to CONNECT OK stands in for it (the TCP handshake
// is one round trip, plus the module's own time, which only makes the
// estimate long), at most PollInterval.
const (
	minPollGap        = 50 * time.Millisecond
	safetyPoll        = 15 * time.Second
	costFactor        = 25
	blockedCostFactor = 4
)

// AwaitReplies tells the connection how many replies its user awaits and
// whether it is blocked until one comes. The first call switches Read from
// polling every PollInterval to the pacing described above, and reads
// from AT+CIPRXGET=4 + =2 pairs to a single =2 (falling back to the pair
// on a module that refuses =2 on an empty buffer). Safe for concurrent use
// with Read.
func (c *Conn) AwaitReplies(due int, blocked bool) {
	c.hinted.Store(true)
	c.due.Store(int32(min(due, 1<<30)))
	if c.blocked.Swap(blocked) != blocked && blocked {
		c.m.poke()
	}
}

// nextPoll is the instant of the next receive exchange. Called under readMu.
func (c *Conn) nextPoll() time.Time {
	rtt := c.rtt
	if rtt <= 0 {
		rtt = c.m.opts.PollInterval
		if c.connectRT > 0 {
			rtt = min(rtt, c.connectRT)
		}
	}
	due, blocked := c.due.Load(), c.blocked.Load()
	last := c.lastPoll
	if last.IsZero() {
		// Nothing can have come before the connection opened, so a
		// session that hints before its first Read is not polled ahead of
		// its first send.
		last = c.opened
	}
	var gap time.Duration
	switch {
	case c.urcSeen && blocked && due <= 1:
		// One reply holds everything up (a broker with Receive Maximum
		// 1, --inflight 1, the last acknowledgement): read it now.
		return last
	case c.urcSeen && blocked:
		return last.Add(minPollGap)
	case c.urcSeen && due == 0:
		return last.Add(minPollGap)
	case due == 0:
		gap = safetyPoll
	case blocked:
		gap = max(rtt/4, blockedCostFactor*c.cost)
	default:
		gap = max(rtt*3/2, costFactor*c.cost)
	}
	return last.Add(max(gap, minPollGap))
}

// wait sleeps until data is announced, d passes, the deadline passes or
// the connection goes away.
func (c *Conn) wait(deadline time.Time, d time.Duration) error {
	if !deadline.IsZero() {
		d = min(d, time.Until(deadline))
	}
	t := time.NewTimer(max(d, 0))
	defer t.Stop()
	select {
	case <-c.m.wake:
	case <-t.C:
	case <-c.closed:
	case <-c.m.readerDone:
		return stepErr("read", c.m.readerErr)
	}
	return nil
}

// fetch asks how much the module buffers (unless the last read said, or
// direct asks to read without asking) and reads up to 1460 bytes of it
// into rbuf. afterClose means CLOSED was seen: an empty buffer or an ERROR
// answer then means nothing more will come.
func (c *Conn) fetch(deadline time.Time, afterClose, direct bool) error {
	start := time.Now()
	err := c.fetchOnce(deadline, afterClose, direct)
	// What spaces the polls is what a poll costs, not the payload a read
	// carried: after a read of 1,460 bytes (about 130 ms at 115200 baud)
	// the pacing would otherwise wait ten times that before the next look,
	// with the session blocked on the last acknowledgement.
	// A failed exchange (a deadline, a stalled module) says nothing of it.
	if d := time.Since(start); err == nil && (c.cost == 0 || d < c.cost) {
		c.cost = d
	}
	c.urcSeen = false
	if err == nil && len(c.rbuf) > 0 && c.rtt == 0 {
		if sent := c.firstSent.Load(); sent != 0 {
			c.rtt = max(time.Duration(time.Now().UnixNano()-sent), minPollGap)
		}
	}
	return err
}

func (c *Conn) fetchOnce(deadline time.Time, afterClose, direct bool) error {
	ctx, cancel := opContext(deadline)
	defer cancel()
	m := c.m
	if err := m.acquire(ctx); err != nil {
		return stepErr("read", err)
	}
	defer m.release()
	if err := m.stalledErr(); err != nil {
		return stepErr("read", err)
	}
	c.lastPoll = time.Now()
	avail := c.left
	if avail == 0 && direct {
		avail = maxReceiveChunk
	}
	if avail == 0 {
		var lines []string
		err := m.exchangeLocked(ctx, "AT+CIPRXGET=4", queryTimeout, okHandler("AT+CIPRXGET=4", &lines))
		if err != nil {
			if afterClose && isCommandError(err) {
				c.drained = true
				return nil
			}
			return stepErr("AT+CIPRXGET=4", err)
		}
		found := false
		for _, l := range lines {
			if v, ok := infoInts(l, "+CIPRXGET:", 2); ok && v[0] == 4 && v[1] >= 0 {
				avail, found = v[1], true
				break
			}
		}
		if !found {
			return stepErr("AT+CIPRXGET=4", fmt.Errorf("%w: %q", ErrProtocol, lines))
		}
	}
	if avail == 0 {
		c.drained = afterClose
		return nil
	}
	// The module drops what it delivers: once asked, the payload is read
	// whatever the deadline says, or it would be lost.
	cmd := "AT+CIPRXGET=2," + strconv.Itoa(min(avail, maxReceiveChunk))
	got, left := -1, 0
	var data []byte
	err := m.exchangeLocked(context.Background(), cmd, queryTimeout, func(ev event) (bool, error) {
		switch ev.kind {
		case evData:
			data = ev.data
			return false, nil
		case evPrompt:
			return false, nil
		}
		if v, ok := infoInts(ev.line, "+CIPRXGET:", 3); ok && v[0] == 2 {
			if v[1] < 0 || v[1] > maxReceiveChunk || v[2] < 0 {
				return true, fmt.Errorf("%w: %q", ErrProtocol, ev.line)
			}
			got, left = v[1], v[2]
			return false, nil
		}
		if ev.line == "OK" {
			if got < 0 || len(data) != got {
				return true, fmt.Errorf("%w: OK after %d of %d payload bytes", ErrProtocol, len(data), got)
			}
			return true, nil
		}
		if err := parseError(ev.line); err != nil {
			return true, err
		}
		return false, nil
	})
	if err != nil {
		c.left = 0
		if afterClose && isCommandError(err) {
			c.drained = true
			return nil
		}
		if direct && c.left == 0 && isCommandError(err) && m.connFatal() == nil {
			// Some firmware may refuse a read of an empty buffer: ask
			// first from now on.
			c.noDirect = true
			return nil
		}
		return stepErr("AT+CIPRXGET=2", err)
	}
	c.left = left
	c.rbuf = append(c.rbuf[:0], data...)
	m.stats.update(func(s *Stats) { s.PayloadRead += int64(len(data)) })
	return nil
}

// Acked asks AT+CIPACK: bytes sent on this connection, acknowledged by the
// peer's TCP, and not yet acknowledged. With quick send, unacked reaching
// 0 is the proof that the broker's host has every byte.
func (c *Conn) Acked(ctx context.Context) (sent, acked, unacked int64, err error) {
	line, err := c.m.queryPrefix(ctx, "AT+CIPACK", "+CIPACK:", queryTimeout)
	if err != nil {
		return 0, 0, 0, err
	}
	v, ok := parseInt64s(line, "+CIPACK:", 3)
	if !ok {
		return 0, 0, 0, stepErr("AT+CIPACK", fmt.Errorf("%w: %q", ErrProtocol, line))
	}
	return v[0], v[1], v[2], nil
}

// Close closes the socket quickly (AT+CIPCLOSE=1; ERROR is tolerated, the
// peer may have closed already) and shuts the bearer (AT+CIPSHUT). It is
// safe to call twice; the second call returns the first call's result.
func (c *Conn) Close() error {
	return c.CloseContext(context.Background())
}

// CloseContext is Close bounded by ctx (each command also has its own
// timeout: 15 s for CIPCLOSE, 65 s for CIPSHUT).
//
// When the module has sent nothing at all (not even a URC) for 0.5 s since
// a command was abandoned, it has probably hung: CIPCLOSE then gets a short
// probe timeout, and CIPSHUT is skipped unless the probe got any answer, so
// that the caller's teardown budget is left for AT+CFUN=0 or a power cut,
// which also end the socket and the bearer.
func (c *Conn) CloseContext(ctx context.Context) error {
	c.closeOnce.Do(func() {
		close(c.closed)
		m := c.m
		if err := m.acquire(ctx); err != nil {
			c.closeErr = stepErr("AT+CIPCLOSE", err)
		} else {
			c.closeErr = m.closeLocked(ctx)
			m.release()
		}
		m.connMu.Lock()
		m.connOpen = false
		m.connMu.Unlock()
	})
	return c.closeErr
}

func (m *Modem) closeLocked(ctx context.Context) error {
	const closeCmd, shutCmd = "AT+CIPCLOSE=1", "AT+CIPSHUT"
	if err := m.settleLate(ctx); err != nil {
		return errors.Join(stepErr(commandName(closeCmd), err), stepErr(shutCmd, err))
	}
	timeout := cipcloseTimeout
	if m.suspect() {
		timeout = hungProbeTimeout
		m.log.Warn("modem silent since its last command; probing it briefly before radio off")
	}
	cerr := m.exchangeLocked(ctx, closeCmd, timeout, func(ev event) (bool, error) {
		if ev.kind != evLine {
			return false, nil
		}
		switch ev.line {
		case "CLOSE OK", "CLOSED OK":
			return true, nil
		}
		if err := parseError(ev.line); err != nil {
			return true, nil // no connection left to close
		}
		return false, nil
	})
	cerr = stepErr(commandName(closeCmd), cerr)
	m.voidPreparation(shutCmd)
	var serr error
	if m.suspect() {
		serr = fmt.Errorf("%w: skipped, the module does not answer", ErrTimeout)
	} else {
		serr = m.exchangeLocked(ctx, shutCmd, cipshutTimeout, shutHandler)
	}
	return errors.Join(cerr, stepErr(shutCmd, serr))
}
