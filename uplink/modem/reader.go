package modem

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// readLoop is the port's only reader. It feeds the framer, which calls
// onEvent for every line, prompt and payload; it stops when the port fails
// or Close is called, and then wakes everyone waiting.
func (m *Modem) readLoop() {
	defer close(m.readerDone)
	defer m.poke()
	f := newFramer(m.onEvent)
	buf := make([]byte, 4096)
	var garbage int64
	for {
		n, err := m.port.Read(buf)
		if n > 0 {
			m.heardAt.Store(max(int64(time.Since(m.born)), 1))
			m.heard.Add(int64(n))
			if m.abortPayload.Swap(false) {
				f.abortPayload()
			}
			f.feed(buf[:n])
			delta := f.garbage - garbage
			garbage = f.garbage
			m.stats.update(func(s *Stats) {
				s.UARTRead += int64(n)
				s.GarbageBytes += delta
			})
		}
		select {
		case <-m.closing:
			m.readerErr = ErrClosed
			return
		default:
		}
		if err != nil {
			m.readerErr = fmt.Errorf("%w: read serial port: %w", ErrClosed, err)
			m.log.Warn("modem reader stopped", "err", err)
			return
		}
	}
}

// onEvent runs on the reader goroutine for everything the framer finds.
func (m *Modem) onEvent(ev event) {
	switch ev.kind {
	case evLine:
		m.trace.line("in", ev.line)
		cmd := ""
		if p := m.current.Load(); p != nil {
			cmd = *p
		}
		if name, ok := classifyURC(ev.line, cmd); ok {
			m.handleURC(name, ev.line)
		}
	case evPrompt:
		m.trace.prompt()
	case evData:
		m.trace.data("in", ev.data)
	}
	m.events.push(ev)
}

// handleURC records what an unsolicited result code means for the socket
// and for a bearer preparation, and wakes a waiting Conn.Read.
func (m *Modem) handleURC(name, line string) {
	m.stats.urc(name)
	m.connMu.Lock()
	if voidsPreparation(name, line) && m.voidPreparationLocked() {
		defer m.log.Debug("bearer preparation void", "reason", line)
	}
	switch name {
	case urcRxData:
		m.rxPending = true
	case urcClosed:
		m.setConnErrLocked(ErrRemoteClosed)
	case urcPDPDeact:
		m.setConnErrLocked(ErrPDPDeact)
	case urcRDY:
		m.setConnErrLocked(ErrRebooted)
	case urcSMSReady:
		// Late in a normal boot; with a socket open it can only mean the
		// module restarted under it (without the RDY a fixed rate prints).
		if m.connOpen {
			m.setConnErrLocked(ErrRebooted)
		}
	default:
		m.connMu.Unlock()
		return
	}
	m.connMu.Unlock()
	if name != urcRxData {
		m.log.Info("modem reported", "urc", name)
	}
	m.poke()
}

// voidsPreparation reports whether a URC means the IP state may have
// changed since PrepareBearer: a reboot, a lost bearer, a change of the
// functionality level or a SIM that went away (the radio with it).
func voidsPreparation(name, line string) bool {
	switch name {
	case urcPDPDeact, urcRDY, urcSMSReady, "+CFUN":
		return true
	case "+CPIN":
		return strings.Contains(line, "NOT READY")
	}
	return false
}

// setConnErrLocked keeps the most severe fatal condition: a reboot loses
// everything, a PDP loss the bearer, a close only the socket.
func (m *Modem) setConnErrLocked(err error) {
	if severity(err) > severity(m.connErr) {
		m.connErr = err
	}
}

func severity(err error) int {
	switch {
	case errors.Is(err, ErrRebooted):
		return 3
	case errors.Is(err, ErrPDPDeact):
		return 2
	case errors.Is(err, ErrRemoteClosed):
		return 1
	}
	return 0
}

func (m *Modem) poke() {
	select {
	case m.wake <- struct{}{}:
	default:
	}
}
