package modemsim

import (
	"bytes"
	"context"
	"io"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nbiot-uploader/uploader/uplink/testkit"
)

// testTimeout bounds every wait in the tests; the fast profile answers in
// microseconds, so hitting it means the module did not answer.
const testTimeout = 5 * time.Second

// host plays the uploader's side of the UART: it collects everything the
// module writes and lets a test wait for exact bytes.
type host struct {
	t        testing.TB
	w        io.Writer
	mu       sync.Mutex // guards buf, err, sent and consumed
	buf      []byte
	err      error
	sent     int64 // bytes written to the module
	consumed int64 // bytes taken from buf by expect and consume
	notify   chan struct{}
	sim      *Sim // set by startPipe and openPort; quiet needs it
}

func newHost(t testing.TB, rw io.ReadWriter) *host {
	h := &host{t: t, w: rw, notify: make(chan struct{}, 1)}
	go func() {
		b := make([]byte, 4096)
		for {
			n, err := rw.Read(b)
			h.mu.Lock()
			h.buf = append(h.buf, b[:n]...)
			if err != nil {
				h.err = err
			}
			h.mu.Unlock()
			select {
			case h.notify <- struct{}{}:
			default:
			}
			if err != nil {
				return
			}
		}
	}()
	return h
}

func (h *host) send(s string) {
	h.t.Helper()
	n, err := h.w.Write([]byte(s))
	h.mu.Lock()
	h.sent += int64(n)
	h.mu.Unlock()
	if err != nil {
		h.t.Fatalf("host write %q: %v", s, err)
	}
}

// waitUntil blocks until cond holds on the collected bytes or the timeout.
func (h *host) waitUntil(cond func([]byte) bool) ([]byte, bool) {
	return h.waitWithin(testTimeout, cond)
}

// waitWithin is waitUntil with its own timeout.
func (h *host) waitWithin(timeout time.Duration, cond func([]byte) bool) ([]byte, bool) {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		h.mu.Lock()
		ok := cond(h.buf)
		buf := append([]byte(nil), h.buf...)
		h.mu.Unlock()
		if ok {
			return buf, true
		}
		select {
		case <-h.notify:
		case <-deadline.C:
			return buf, false
		}
	}
}

// expect consumes exactly want from what the module wrote.
func (h *host) expect(want string) {
	h.t.Helper()
	h.expectWithin(testTimeout, want)
}

// expectWithin is expect for an answer the module gives only after a
// delay longer than testTimeout.
func (h *host) expectWithin(timeout time.Duration, want string) {
	h.t.Helper()
	buf, ok := h.waitWithin(timeout, func(b []byte) bool { return len(b) >= len(want) })
	if !ok || string(buf[:len(want)]) != want {
		h.t.Fatalf("module wrote %q, want %q", buf, want)
	}
	h.consume(len(want))
}

// expectContains consumes everything up to and including sub.
func (h *host) expectContains(sub string) string {
	h.t.Helper()
	buf, ok := h.waitUntil(func(b []byte) bool { return bytes.Contains(b, []byte(sub)) })
	if !ok {
		h.t.Fatalf("module wrote %q, want it to contain %q", buf, sub)
	}
	n := bytes.Index(buf, []byte(sub)) + len(sub)
	h.consume(n)
	return string(buf[:n])
}

// quiet checks that the module said nothing the test has not consumed in
// answer to everything the host sent: it waits until the module has
// finished with the host's last byte, then compares what the module has
// written (counted before each write, so a write in flight counts) with
// what the host took. It proves silence by the module's own progress, not
// by waiting a while; output the module schedules for later (a late
// prompt) is the business of the test's next expect.
func (h *host) quiet() {
	h.t.Helper()
	h.mu.Lock()
	sent := h.sent
	h.mu.Unlock()
	if !testkit.WaitUntil(testTimeout, func() bool { return h.sim.m.inputDone.Load() >= sent }) {
		h.t.Fatalf("the module took in %d of the %d bytes the host sent", h.sim.m.inputDone.Load(), sent)
	}
	out := h.sim.Accounting().UARTBytesOut
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.buf) > 0 || out != h.consumed {
		h.t.Fatalf("module wrote %q (%d bytes in all, %d taken by the test), want silence", h.buf, out, h.consumed)
	}
}

func (h *host) consume(n int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.buf = h.buf[n:]
	h.consumed += int64(n)
}

// cmd sends a command line and expects the exact answer.
func (h *host) cmd(line, want string) {
	h.t.Helper()
	h.send(line + "\r")
	h.expect(want)
}

// startPipe serves cfg over net.Pipe and returns the simulator and its host.
func startPipe(t testing.TB, cfg Config) (*Sim, *host) {
	t.Helper()
	moduleEnd, hostEnd := net.Pipe()
	sim, err := Serve(context.Background(), moduleEnd, cfg)
	if err != nil {
		t.Fatalf("Serve: %v", err)
	}
	t.Cleanup(func() {
		_ = sim.Close()
		_ = hostEnd.Close()
	})
	h := newHost(t, hostEnd)
	h.sim = sim
	return sim, h
}

// broker is a loopback TCP listener standing in for the MQTT broker.
type broker struct {
	t     testing.TB
	ln    net.Listener
	conns chan net.Conn
	conn  net.Conn
}

func newBroker(t testing.TB) *broker {
	t.Helper()
	ln := testkit.Listen(t)
	b := &broker{t: t, ln: ln, conns: make(chan net.Conn, 8)}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				close(b.conns)
				return
			}
			b.conns <- c
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		for c := range b.conns {
			_ = c.Close()
		}
		if b.conn != nil {
			_ = b.conn.Close()
		}
	})
	return b
}

func (b *broker) port() string { return strconv.Itoa(b.ln.Addr().(*net.TCPAddr).Port) }

// cipstart is the AT+CIPSTART line for this broker.
func (b *broker) cipstart() string { return `AT+CIPSTART="TCP","127.0.0.1",` + b.port() }

// accept takes the next connection the module opened.
func (b *broker) accept() {
	b.t.Helper()
	select {
	case c := <-b.conns:
		if b.conn != nil {
			_ = b.conn.Close()
		}
		b.conn = c
	case <-time.After(testTimeout):
		b.t.Fatal("module did not connect to the broker")
	}
}

// expect reads exactly want from the connection.
func (b *broker) expect(want string) {
	b.t.Helper()
	got := make([]byte, len(want))
	_ = b.conn.SetReadDeadline(time.Now().Add(testTimeout))
	if _, err := io.ReadFull(b.conn, got); err != nil || string(got) != want {
		b.t.Fatalf("broker read %q (%v), want %q", got, err, want)
	}
}

// expectEOF checks that the module closed the connection.
func (b *broker) expectEOF() {
	b.t.Helper()
	_ = b.conn.SetReadDeadline(time.Now().Add(testTimeout))
	rest, err := io.ReadAll(b.conn)
	if err != nil || len(rest) > 0 {
		b.t.Fatalf("broker read %q (%v), want EOF", rest, err)
	}
}

func (b *broker) send(s string) {
	b.t.Helper()
	if _, err := b.conn.Write([]byte(s)); err != nil {
		b.t.Fatalf("broker write: %v", err)
	}
}
