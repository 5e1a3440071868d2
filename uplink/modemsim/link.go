package modemsim

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"sync"
	"time"
)

// Air byte costs (performance-model.md §3): 40 bytes of IPv4+TCP header per
// segment; a handshake of SYN (with options), SYN-ACK and ACK; a teardown of
// FIN and ACK each way.
const (
	segmentHeader    = 40
	handshakeAirUp   = 60 + 40
	handshakeAirDown = 60
	teardownAirUp    = 40 + 40
	teardownAirDown  = 40 + 40
)

// link is the one TCP connection of single-connection mode.
type link struct {
	id        int
	conn      net.Conn // set once the real dial succeeded
	running   bool     // reader and writer goroutines started
	connected bool     // CONNECT OK given and not closed since
	closing   bool     // shut down by the module; the reader's EOF is expected
	halted    bool     // a fault ended delivery; later sends go nowhere
	losing    bool     // the lose-data fault swallows the rest
	tx        int      // bytes sent on this link (AT+CIPACK)
	acks      []ackMark
	// inAir holds what the host sent that is not yet on the air (its
	// modelled transfer has not finished): it reaches the broker when it
	// lands; a quick close (AT+CIPCLOSE=1, AT+CIPSHUT, power loss) drops it,
	// as the module's does.
	inAir []*airSegment

	mu     sync.Mutex // guards queue and closed, shared with the writer goroutine
	queue  [][]byte
	closed bool
	signal chan struct{}
}

// ackMark says that the first upto bytes are acknowledged from instant at.
type ackMark struct {
	upto int
	at   time.Duration
}

func newLink(id int) *link { return &link{id: id, signal: make(chan struct{}, 1)} }

func (l *link) acked(now time.Duration) (tx, acked int) {
	for _, a := range l.acks {
		if a.at <= now {
			acked = a.upto
		}
	}
	return l.tx, acked
}

// enqueue hands bytes to the writer goroutine without blocking the module.
func (l *link) enqueue(b []byte) {
	l.mu.Lock()
	l.queue = append(l.queue, b)
	l.mu.Unlock()
	l.wake()
}

// finish asks the writer goroutine to flush and close the connection.
func (l *link) finish() {
	l.mu.Lock()
	l.closed = true
	l.mu.Unlock()
	l.wake()
}

func (l *link) wake() {
	select {
	case l.signal <- struct{}{}:
	default:
	}
}

// writeLoop forwards queued bytes to the broker, then closes the connection
// once the module shut the link down.
func (l *link) writeLoop(timeout time.Duration) {
	for range l.signal {
		l.mu.Lock()
		queue, closed := l.queue, l.closed
		l.queue = nil
		l.mu.Unlock()
		for _, b := range queue {
			_ = l.conn.SetWriteDeadline(time.Now().Add(timeout))
			if _, err := l.conn.Write(b); err != nil {
				// The reader sees the broken connection and reports it.
				break
			}
		}
		if closed {
			_ = l.conn.Close()
			return
		}
	}
}

func (m *module) trackConn(c net.Conn, track bool) {
	m.connsMu.Lock()
	defer m.connsMu.Unlock()
	if track {
		m.conns[c] = struct{}{}
	} else {
		delete(m.conns, c)
	}
}

// startConnect is AT+CIPSTART: a real dial, and CONNECT OK or CONNECT FAIL
// at the modelled instant.
func (m *module) startConnect(host string, port int, activatePDP bool) {
	m.dropLink()
	m.rx, m.rxBacklog = nil, nil
	m.vol.ip = stateConnecting
	m.linkSeq++
	l := newLink(m.linkSeq)
	m.link = l
	due := m.clk.now() + m.cfg.RoundTrip + m.cfg.ConnectExtra
	if activatePDP {
		due += m.cfg.PDPDelay
	}
	if m.faults.ConnectFail {
		m.log.Debug("fault: connect fails", "host", host, "port", port)
		m.schedule(due, true, func() { m.connectFailed(l) })
		return
	}
	addr := net.JoinHostPort(host, strconv.Itoa(port))
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		ctx, cancel := context.WithTimeout(m.ctx, m.cfg.DialTimeout)
		conn, err := m.cfg.Dialer(ctx, "tcp", addr)
		cancel()
		if err != nil {
			err = fmt.Errorf("dial %s: %w", addr, err)
		} else {
			m.trackConn(conn, true)
		}
		if !m.post(func() { m.dialed(l, conn, err, due) }) && conn != nil {
			m.trackConn(conn, false)
			_ = conn.Close()
		}
	}()
}

func (m *module) dialed(l *link, conn net.Conn, err error, due time.Duration) {
	if m.link != l || l.closing {
		if conn != nil {
			m.trackConn(conn, false)
			_ = conn.Close()
		}
		return
	}
	if err != nil {
		m.log.Debug("connect failed", "err", err)
		m.schedule(max(due, m.clk.now()), true, func() { m.connectFailed(l) })
		return
	}
	l.conn = conn
	m.schedule(due, true, func() { m.connected(l) })
}

func (m *module) connected(l *link) {
	if m.link != l || l.closing {
		return
	}
	l.connected, l.running = true, true
	m.vol.ip = stateConnected
	m.log.Debug("tcp connected", "link", l.id, "remote", l.conn.RemoteAddr().String())
	m.acct.beginStream()
	m.acct.add(func(a *Accounting) {
		a.AirBytesUp += handshakeAirUp
		a.AirBytesDown += handshakeAirDown
	})
	m.wg.Add(2)
	go func() {
		defer m.wg.Done()
		defer m.trackConn(l.conn, false)
		l.writeLoop(m.cfg.DialTimeout)
	}()
	go func() {
		defer m.wg.Done()
		m.readLoop(l)
	}()
	m.urc("CONNECT OK")
}

func (m *module) connectFailed(l *link) {
	if m.link != l {
		return
	}
	m.log.Debug("tcp connect failed", "link", l.id)
	m.dropLink()
	m.vol.ip = stateStatus
	var out []byte
	if m.cfg.Variants.ConnectFailState {
		out = frame("STATE: " + stateStatus)
	}
	m.write(append(out, frame("CONNECT FAIL")...))
}

// readLoop passes what the broker sends to the module.
func (m *module) readLoop(l *link) {
	buf := make([]byte, 2048)
	for {
		n, err := l.conn.Read(buf)
		if n > 0 {
			data := append([]byte(nil), buf[:n]...)
			if !m.post(func() { m.received(l, data) }) {
				return
			}
		}
		if err != nil {
			m.post(func() { m.remoteEOF(l) })
			return
		}
	}
}

// closeLink shuts the connection down from the module side.
func (m *module) closeLink(l *link) {
	if l == nil || l.closing {
		return
	}
	m.dropAir(l) // a slow close flushed it first
	l.closing, l.connected = true, false
	switch {
	case l.running:
		l.finish()
	case l.conn != nil:
		m.trackConn(l.conn, false)
		_ = l.conn.Close()
	}
}

// airSegment is one send whose modelled transfer ends at finish.
type airSegment struct {
	data      []byte
	finish    time.Duration
	forwarded bool // on the virtual clock: already handed to the broker
}

// toAir hands data to the broker once its modelled transfer ends at
// finish (at once on an unpaced link), unless a quick close comes first.
//
// On the virtual clock the data goes to the broker at once, as before:
// events there wait for the host's silence, and holding data back would
// turn the modelled transfer into host idle time. The segment is still
// kept until its finish, so a quick close counts what it would drop.
func (m *module) toAir(l *link, data []byte, finish time.Duration) {
	now := m.clk.now()
	for len(l.inAir) > 0 && l.inAir[0].forwarded && l.inAir[0].finish <= now {
		l.inAir = l.inAir[1:]
	}
	if finish <= now && len(l.inAir) == 0 {
		m.toBroker(l, data, finish)
		return
	}
	seg := &airSegment{data: data, finish: finish}
	l.inAir = append(l.inAir, seg)
	if m.clk.virtual {
		seg.forwarded = true
		m.toBroker(l, data, finish)
		return
	}
	m.schedule(finish, false, func() {
		if len(l.inAir) == 0 || l.inAir[0] != seg {
			return // flushed by a slow close, or dropped by a quick one
		}
		l.inAir = l.inAir[1:]
		if m.link == l && !l.closing {
			m.toBroker(l, seg.data, seg.finish)
		}
	})
}

// toBroker hands data whose transfer ends at finish to the broker and
// notes that instant: what the broker sends back can only be an answer to
// data it has, so it arrives a round trip after the last such transfer
// (received). On the real-time clock that is the segment that just
// landed, not the ones the host has queued behind it; on the virtual clock
// data reaches the broker at once, so it is the latest one sent.
func (m *module) toBroker(l *link, data []byte, finish time.Duration) {
	m.brokerHas = max(m.brokerHas, finish)
	l.enqueue(data)
}

// flushAir sends on what is still in the air: a slow close (AT+CIPCLOSE=0)
// finishes the transfer before its FIN.
func (m *module) flushAir(l *link) {
	if l == nil {
		return
	}
	for _, seg := range l.inAir {
		if !seg.forwarded {
			m.toBroker(l, seg.data, seg.finish)
		}
	}
	l.inAir = nil
}

// dropAir forgets what is not on the air yet (a quick close) and counts
// it (Accounting.DroppedAtCloseBytes).
func (m *module) dropAir(l *link) {
	if l == nil || len(l.inAir) == 0 {
		return
	}
	now, lost := m.clk.now(), 0
	for _, seg := range l.inAir {
		if seg.finish > now {
			lost += len(seg.data)
		}
	}
	l.inAir = nil
	if lost == 0 {
		return
	}
	m.log.Debug("quick close drops what is not on the air yet", "bytes", lost)
	m.acct.add(func(a *Accounting) { a.DroppedAtCloseBytes += int64(lost) })
}

// dropLink closes the link and forgets it (CIPCLOSE, CIPSHUT, power loss).
func (m *module) dropLink() {
	m.closeLink(m.link)
	m.link = nil
}

func (m *module) teardownAir() {
	m.acct.add(func(a *Accounting) {
		a.AirBytesUp += teardownAirUp
		a.AirBytesDown += teardownAirDown
	})
}

// send forwards one CIPSEND payload, applies the byte-count faults and
// answers DATA ACCEPT at once (quick send) or SEND OK one round trip after
// the air transfer ends (normal send).
func (m *module) send(p []byte) {
	n := len(p)
	m.acct.add(func(a *Accounting) {
		a.LargestChunk = max(a.LargestChunk, n)
		if len(a.ChunkSizes) < maxChunkSizes {
			a.ChunkSizes = append(a.ChunkSizes, n)
		}
	})
	l := m.link
	if l == nil || !l.connected {
		m.write(frame("SEND FAIL"))
		return
	}
	forward, after := m.applyByteFaults(l, n)

	if idle := m.clk.now() - m.airBusy; idle > 0 && m.airBusy > 0 {
		m.log.Debug("air idle", "for", idle, "t", m.clk.now())
	}
	finish := max(m.clk.now(), m.airBusy) + transfer(n+segmentHeader, m.cfg.UplinkRate)
	m.airBusy = finish
	ackAt := finish + m.cfg.RoundTrip
	l.tx += n
	l.acks = append(l.acks, ackMark{upto: l.tx, at: ackAt})
	delivered := append([]byte(nil), p[:forward]...)
	m.acct.add(func(a *Accounting) {
		a.AirBytesUp += int64(n + segmentHeader)
		a.AirBytesDown += segmentHeader
		a.LostBytesUp += int64(n - forward)
	})
	if forward > 0 {
		m.acct.appendStream(delivered)
		m.toAir(l, delivered, finish)
	}

	quick := m.vol.quickSend
	if quick {
		sep := ""
		if m.cfg.Variants.DataAcceptSpace {
			sep = " "
		}
		m.write(frame(fmt.Sprintf("DATA ACCEPT:%s%d", sep, n)))
	}
	switch {
	case after != "":
		// In normal mode the fault replaces SEND OK; the host waits for it.
		m.schedule(ackAt, !quick, func() { m.linkFault(l, after) })
	case !quick:
		m.schedule(ackAt, true, func() {
			if m.link == l && l.connected {
				m.urc("SEND OK")
			}
		})
	}
}

// applyByteFaults counts n more bytes and returns how many of them reach
// the broker and which URC, if any, ends the link.
func (m *module) applyByteFaults(l *link, n int) (forward int, after string) {
	f := &m.faults
	before := f.bytes
	f.bytes += n
	forward = n
	if l.halted || l.losing {
		return 0, ""
	}
	if f.PDPDeactAfterBytes > 0 && !f.pdpFired && f.bytes >= f.PDPDeactAfterBytes {
		f.pdpFired = true
		forward = min(forward, f.PDPDeactAfterBytes-before)
		after = "+PDP: DEACT"
	}
	if f.RemoteCloseAfterBytes > 0 && !f.closeFired && f.bytes >= f.RemoteCloseAfterBytes {
		f.closeFired = true
		forward = min(forward, f.RemoteCloseAfterBytes-before)
		if after == "" {
			after = "CLOSED"
		}
	}
	if f.LoseDataAfterBytes > 0 && !f.loseFired && f.bytes > f.LoseDataAfterBytes {
		f.loseFired = true
		l.losing = true
		forward = min(forward, f.LoseDataAfterBytes-before)
	}
	if after != "" {
		l.halted = true
		m.log.Debug("fault: link ends", "urc", after, "after_bytes", f.bytes)
	}
	return max(forward, 0), after
}

// linkFault ends a link with "CLOSED" (remote close) or "+PDP: DEACT".
func (m *module) linkFault(l *link, urc string) {
	if m.link != l || !l.connected {
		return
	}
	m.log.Debug("link ended", "link", l.id, "urc", urc)
	m.closeLink(l)
	if urc == "CLOSED" {
		m.vol.ip = stateClosed
		m.teardownAir()
	} else {
		m.vol.ip = statePDPDeact
	}
	m.urc(urc)
}

// segment is downlink data on its way to the module.
type segment struct {
	l    *link
	data []byte
	ev   *event
}

// received stamps data from the broker: it cannot arrive before one round
// trip after the last uplink transfer, and it takes its downlink time. Data
// that arrives while an earlier segment is still on its way joins it, up to
// the MSS, so the air figures do not depend on how the broker's small
// writes happened to be split by the local TCP stack.
func (m *module) received(l *link, data []byte) {
	if m.link != l || !l.connected {
		return
	}
	n := len(data)
	if pd := m.downPending; pd != nil && pd.l == l && len(pd.data)+n <= maxSendLimit &&
		pd.ev.due >= m.brokerHas+m.cfg.RoundTrip {
		m.acct.add(func(a *Accounting) {
			a.MQTTBytesDown += int64(n)
			a.AirBytesDown += int64(n)
		})
		pd.data = append(pd.data, data...)
		m.downBusy += transfer(n, m.cfg.DownlinkRate)
		pd.ev.due = m.downBusy
		return
	}
	m.acct.add(func(a *Accounting) {
		a.MQTTBytesDown += int64(n)
		a.AirBytesDown += int64(n + segmentHeader)
		a.AirBytesUp += segmentHeader
	})
	start := max(m.clk.now(), m.brokerHas+m.cfg.RoundTrip, m.downBusy)
	m.downBusy = start + transfer(n+segmentHeader, m.cfg.DownlinkRate)
	seg := &segment{l: l, data: data}
	seg.ev = m.schedule(m.downBusy, false, func() {
		if m.downPending == seg {
			m.downPending = nil
		}
		m.deliver(l, seg.data)
	})
	m.downPending = seg
}

func (m *module) deliver(l *link, data []byte) {
	if m.link != l {
		return
	}
	m.log.Debug("downlink data", "bytes", len(data), "t", m.clk.now())
	switch {
	case m.vol.rxManual:
		wasEmpty := len(m.rx) == 0
		m.rxBacklog = append(m.rxBacklog, data...)
		m.refillRx()
		switch m.cfg.Variants.RxURC {
		case RxURCEvery:
			m.rxURC()
		case RxURCOnce:
			if wasEmpty && len(m.rx) > 0 {
				m.rxURC()
			}
		case RxURCRepeat:
			m.rxURC()
			if !m.rxRepeating {
				m.rxRepeating = true
				m.scheduleRxRepeat(l, m.rxReads)
			}
		}
	case m.vol.head:
		m.write(append([]byte(fmt.Sprintf("\r\n+IPD,%d:", len(data))), data...))
	default:
		m.write(data)
	}
}

// rxURC announces unread data.
func (m *module) rxURC() {
	m.acct.add(func(a *Accounting) { a.RxURCs++ })
	m.urc("+CIPRXGET: 1")
}

// scheduleRxRepeat repeats the announcement of RxURCRepeat every interval
// while data waits and the host has not read since reads (the count of
// AT+CIPRXGET=2/3 when the reminder was set). On the virtual clock it is
// passive: it happens when other activity reaches its instant.
func (m *module) scheduleRxRepeat(l *link, reads uint64) {
	every := m.cfg.Variants.RxURCRepeatEvery
	if every <= 0 {
		every = DefaultRxURCRepeatEvery
	}
	e := m.schedule(m.clk.now()+every, false, func() {
		if m.link != l || !m.vol.rxManual || len(m.rx) == 0 {
			m.rxRepeating = false
			return
		}
		if m.rxReads == reads {
			m.rxURC()
		}
		// After a read that left data (or before new data), the reminder
		// counts from that read.
		m.scheduleRxRepeat(l, m.rxReads)
	})
	e.passive = true
}

// refillRx moves data that did not fit into the receive buffer.
func (m *module) refillRx() {
	take := min(len(m.rxBacklog), m.cfg.RxBuffer-len(m.rx))
	if take <= 0 {
		return
	}
	m.rx = append(m.rx, m.rxBacklog[:take]...)
	m.rxBacklog = append([]byte(nil), m.rxBacklog[take:]...)
}

// remoteEOF reports the broker's close after the data that preceded it.
func (m *module) remoteEOF(l *link) {
	if m.link != l || !l.connected {
		return
	}
	// Like data, the close cannot come back before the broker's last
	// uplink data had its round trip.
	at := max(m.clk.now(), m.brokerHas+m.cfg.RoundTrip, m.downBusy)
	m.schedule(at, false, func() { m.linkFault(l, "CLOSED") })
}

// closeConns closes every TCP connection; used by Sim.Close.
func (m *module) closeConns() {
	m.connsMu.Lock()
	defer m.connsMu.Unlock()
	for c := range m.conns {
		_ = c.Close()
	}
}
