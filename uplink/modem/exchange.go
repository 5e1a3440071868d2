package modem

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// acquire takes the UART for one exchange.
func (m *Modem) acquire(ctx context.Context) error {
	select {
	case <-m.closing:
		return ErrClosed
	default:
	}
	// select picks at random among ready cases: an ended ctx must not win
	// the UART and send a command nobody will wait for.
	if ctx.Err() != nil {
		return ctxErr(ctx)
	}
	select {
	case m.sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctxErr(ctx)
	case <-m.closing:
		return ErrClosed
	}
}

func (m *Modem) release() {
	m.current.Store(nil)
	<-m.sem
}

// begin prepares the stream for a new command: answers still queued belong
// to an earlier command that gave up on them.
func (m *Modem) begin(cmd string) {
	m.events.clear()
	m.abortPayload.Store(true)
	m.current.Store(&cmd)
}

// send writes raw bytes, bounded by ctx and writeTimeout.
func (m *Modem) send(ctx context.Context, b []byte) error {
	done := make(chan error, 1)
	timer := time.NewTimer(writeTimeout)
	defer timer.Stop()
	select {
	case m.writeCh <- writeRequest{b: b, done: done}:
	case <-m.closing:
		return ErrClosed
	case <-ctx.Done():
		return ctxErr(ctx)
	case <-timer.C:
		return fmt.Errorf("%w: serial port not writable", ErrTimeout)
	}
	select {
	case err := <-done:
		if err != nil {
			return err
		}
		m.stats.update(func(s *Stats) { s.UARTWritten += int64(len(b)) })
		return nil
	case <-m.closing:
		return ErrClosed
	case <-ctx.Done():
		return ctxErr(ctx)
	case <-timer.C:
		return fmt.Errorf("%w: serial write did not complete", ErrTimeout)
	}
}

// writeLoop performs port writes for send, so a write that never returns
// (a wedged driver) cannot hang a caller past its timeout.
func (m *Modem) writeLoop() {
	for {
		select {
		case req := <-m.writeCh:
			req.done <- writeFull(m.port, req.b)
		case <-m.closing:
			return
		}
	}
}

func writeFull(w io.Writer, b []byte) error {
	for len(b) > 0 {
		n, err := w.Write(b)
		if err != nil {
			return fmt.Errorf("write serial port: %w", err)
		}
		if n == 0 {
			return fmt.Errorf("write serial port: %w", io.ErrShortWrite)
		}
		b = b[n:]
	}
	return nil
}

// sendLine writes one command line terminated by CR.
func (m *Modem) sendLine(ctx context.Context, cmd string) error {
	m.trace.line("out", cmd)
	m.stats.update(func(s *Stats) { s.Commands++ })
	return m.send(ctx, []byte(cmd+"\r"))
}

// handler consumes one event of a command's answer; done ends the wait.
type handler func(ev event) (done bool, err error)

// await feeds events to h until it is done, the timeout passes, ctx ends or
// the reader stops.
func (m *Modem) await(ctx context.Context, timeout time.Duration, h handler) error {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	stopped := false
	for {
		for {
			ev, ok := m.events.pop()
			if !ok {
				break
			}
			if done, err := h(ev); done || err != nil {
				return err
			}
		}
		if stopped {
			return m.readerErr
		}
		select {
		case <-m.events.notify:
		case <-timer.C:
			return ErrTimeout
		case <-ctx.Done():
			return ctxErr(ctx)
		case <-m.readerDone:
			// The reader queued everything before stopping: one more
			// pass delivers an answer that arrived just before EOF.
			stopped = true
		}
	}
}

// exchange runs one command: it takes the UART, sends cmd and feeds the
// answer to h. Echo lines and reboot banners are handled here; h sees the
// rest. The error is wrapped in a *fault.StepError named after the command.
func (m *Modem) exchange(ctx context.Context, cmd string, timeout time.Duration, h handler) error {
	if err := m.acquire(ctx); err != nil {
		return stepErr(commandName(cmd), err)
	}
	defer m.release()
	return stepErr(commandName(cmd), m.exchangeLocked(ctx, cmd, timeout, h))
}

func (m *Modem) exchangeLocked(ctx context.Context, cmd string, timeout time.Duration, h handler) error {
	if err := m.settleLate(ctx); err != nil {
		return err
	}
	m.begin(cmd)
	sent := time.Now()
	err := m.sendLine(ctx, cmd)
	if err == nil {
		err = m.await(ctx, timeout, commonHandler(cmd, h))
	}
	// A send cut short by ctx may still have reached the module, which
	// then answers it: it counts as abandoned too.
	m.noteAbandoned(cmd, sent, timeout, err, ctx.Err() != nil)
	return err
}

// commonHandler wraps h with what every command shares: a line equal to the
// command is its echo (ATE1, the power-on default), and "RDY" means the
// module restarted and the answer will never come. "SMS Ready" is not
// taken as a restart here: after power-on it arrives seconds after the
// module already answers commands.
func commonHandler(cmd string, h handler) handler {
	return func(ev event) (bool, error) {
		if ev.kind == evLine {
			if strings.EqualFold(ev.line, cmd) {
				return false, nil
			}
			if ev.line == urcRDY {
				return true, ErrRebooted
			}
		}
		return h(ev)
	}
}

// okHandler collects information lines until OK and fails on an error
// final. URCs are left out of lines.
func okHandler(cmd string, lines *[]string) handler {
	return func(ev event) (bool, error) {
		if ev.kind != evLine {
			return false, nil
		}
		if ev.line == "OK" {
			return true, nil
		}
		if err := parseError(ev.line); err != nil {
			return true, err
		}
		if _, urc := classifyURC(ev.line, cmd); urc {
			return false, nil
		}
		if lines != nil {
			*lines = append(*lines, ev.line)
		}
		return false, nil
	}
}

// query runs a command answered by information lines and OK.
func (m *Modem) query(ctx context.Context, cmd string, timeout time.Duration) ([]string, error) {
	var lines []string
	err := m.exchange(ctx, cmd, timeout, okHandler(cmd, &lines))
	return lines, err
}

// queryPrefix runs a query and returns its first line starting with prefix.
func (m *Modem) queryPrefix(ctx context.Context, cmd, prefix string, timeout time.Duration) (string, error) {
	lines, err := m.query(ctx, cmd, timeout)
	if err != nil {
		return "", err
	}
	for _, l := range lines {
		if strings.HasPrefix(l, prefix) {
			return l, nil
		}
	}
	return "", stepErr(commandName(cmd), fmt.Errorf("%w: no %s line in %q", ErrProtocol, prefix, lines))
}

// ctxErr reports an ended context; a passed deadline also counts as
// ErrTimeout because the command got no answer in time.
func ctxErr(ctx context.Context) error {
	err := ctx.Err()
	if cause := context.Cause(ctx); cause != nil && cause != err { //nolint:errorlint // identity: a cause other than ctx.Err itself
		return cause // a Conn deadline: already ErrTimeout and os.ErrDeadlineExceeded
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%w: %w", ErrTimeout, err)
	}
	return err
}
