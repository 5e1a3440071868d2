package modem

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nbiot-uploader/uploader/uplink/testkit"
)

// pipePort is the host side of a fake UART.
type pipePort struct {
	r *io.PipeReader
	w *io.PipeWriter
}

func (p *pipePort) Read(b []byte) (int, error)  { return p.r.Read(b) }
func (p *pipePort) Write(b []byte) (int, error) { return p.w.Write(b) }
func (p *pipePort) Close() error {
	p.r.Close()
	p.w.Close()
	return nil
}

var _ io.ReadWriteCloser = (*pipePort)(nil)

// fakeIO is the module side of a fake UART.
type fakeIO struct {
	in  *bufio.Reader
	out *io.PipeWriter
}

// readCommand returns the next command line, terminated by CR; a LF after
// the CR is dropped, as on the module.
func (f *fakeIO) readCommand() (string, error) {
	var sb strings.Builder
	for {
		b, err := f.in.ReadByte()
		if err != nil {
			return sb.String(), err
		}
		switch b {
		case '\r':
			return sb.String(), nil
		case '\n':
			continue
		}
		sb.WriteByte(b)
	}
}

func (f *fakeIO) readData(n int) ([]byte, error) {
	b := make([]byte, n)
	_, err := io.ReadFull(f.in, b)
	return b, err
}

func (f *fakeIO) send(s string) error {
	_, err := f.out.Write([]byte(s))
	return err
}

// step is one scripted exchange: the command the host must send and what
// the module answers.
type step struct {
	cmd   string        // expected command line; "*" accepts any
	delay time.Duration // before the reply
	reply string        // raw bytes, usually "\r\n...\r\n"
	data  int           // then read this many payload bytes
	after string        // and answer this
	// afterDelay comes before after: a second part of the answer that
	// arrives later (CONNECT OK after OK).
	afterDelay time.Duration
}

// fakeModem runs a responder on the module side of a pipe pair.
type fakeModem struct {
	port *pipePort
	io   *fakeIO
	done chan struct{}

	mu       sync.Mutex
	commands []string
	replies  int // scripted replies written to the host
	payload  bytes.Buffer
	err      error
	changed  testkit.Notifier // after each command recorded and reply sent

	wire bytes.Buffer // every byte the host wrote; read it after done
}

func startFake(t testing.TB, respond func(f *fakeModem) error) *fakeModem {
	t.Helper()
	modR, hostW := io.Pipe()
	hostR, modW := io.Pipe()
	f := &fakeModem{
		port: &pipePort{r: hostR, w: hostW},
		done: make(chan struct{}),
	}
	f.io = &fakeIO{in: bufio.NewReader(io.TeeReader(modR, &f.wire)), out: modW}
	go func() {
		defer close(f.done)
		err := respond(f)
		if err != nil && !errors.Is(err, io.ErrClosedPipe) && !errors.Is(err, io.EOF) {
			f.mu.Lock()
			f.err = err
			f.mu.Unlock()
		}
		// Keep draining so the host never blocks on a write.
		_, _ = io.Copy(io.Discard, f.io.in)
	}()
	t.Cleanup(func() {
		modR.Close()
		modW.Close()
		<-f.done
	})
	return f
}

// scripted answers each expected command in turn, then stays silent.
func scripted(steps ...step) func(f *fakeModem) error {
	return func(f *fakeModem) error {
		for i, s := range steps {
			cmd, err := f.io.readCommand()
			if err != nil {
				return err
			}
			f.record(cmd)
			if s.cmd != "*" && cmd != s.cmd {
				return fmt.Errorf("step %d: got command %q, want %q", i, cmd, s.cmd)
			}
			if s.delay > 0 {
				time.Sleep(s.delay) // a slow module is what the step describes
			}
			if err := f.io.send(s.reply); err != nil {
				return err
			}
			f.mu.Lock()
			f.replies++
			f.mu.Unlock()
			f.changed.Notify()
			if s.data > 0 {
				b, err := f.io.readData(s.data)
				if err != nil {
					return err
				}
				f.mu.Lock()
				f.payload.Write(b)
				f.mu.Unlock()
			}
			if s.after != "" {
				time.Sleep(s.afterDelay) // the later part of the answer comes late on purpose
				if err := f.io.send(s.after); err != nil {
					return err
				}
			}
		}
		for {
			cmd, err := f.io.readCommand()
			if err != nil {
				return err
			}
			f.record(cmd)
		}
	}
}

func (f *fakeModem) record(cmd string) {
	f.mu.Lock()
	f.commands = append(f.commands, cmd)
	f.mu.Unlock()
	f.changed.Notify()
}

// cmds returns the command lines received so far.
func (f *fakeModem) cmds() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.commands...)
}

// waitCmds waits for n command lines and returns those received: the
// host's write returns when the pipe took the bytes, a moment before the
// fake parsed them. It wakes on each recorded command; the deadline is only
// a safety net, after which it returns what it has for the caller to
// report.
func (f *fakeModem) waitCmds(n int) []string {
	f.changed.WaitUntil(waitSafety, func() bool { return len(f.cmds()) >= n })
	return f.cmds()
}

// waitReplies waits until the script has written n replies to the host,
// and reports whether it did.
func (f *fakeModem) waitReplies(n int) bool {
	return f.changed.WaitUntil(waitSafety, func() bool {
		f.mu.Lock()
		defer f.mu.Unlock()
		return f.replies >= n
	})
}

// allCmds closes m, waits until the fake has read everything the host
// wrote, and returns every command line: nothing the driver does later can
// reach the module, so the list is complete without waiting for a while.
func (f *fakeModem) allCmds(t *testing.T, m *Modem) []string {
	t.Helper()
	m.Close()
	testkit.Recv(t, f.done, waitSafety, "end of the fake modem's input after Close")
	return f.cmds()
}

// waitSafety bounds waits for an event the test expects: generous, as it
// only ends a test that is failing anyway.
const waitSafety = 10 * time.Second

func (f *fakeModem) failure() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.err
}

func (f *fakeModem) sent() []byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	return bytes.Clone(f.payload.Bytes())
}

// newScripted starts a Modem on a scripted fake and closes both at the end
// of the test, failing it if the script was not followed.
func newScripted(t *testing.T, opts Options, steps ...step) (*Modem, *fakeModem) {
	t.Helper()
	f := startFake(t, scripted(steps...))
	m := New(f.port, opts)
	t.Cleanup(func() {
		m.Close()
		if err := f.failure(); err != nil {
			t.Errorf("fake modem: %v", err)
		}
	})
	return m, f
}

// echoModem is a behavioural fake of the single-connection CIP stack: the
// peer echoes every byte sent, which exercises CIPSEND chunking and the
// CIPRXGET=2 binary framing in both directions.
type echoModem struct {
	limit      int  // AT+CIPSEND? answer
	notify     bool // send "+CIPRXGET: 1" when data arrives into an empty buffer
	noisyURCs  bool // put "+CIPRXGET: 1" in front of every CIPRXGET answer
	closeAfter int  // after this many payload bytes, report CLOSED (0: never)

	mu      sync.Mutex
	rx      []byte
	txTotal int64
	chunks  []int
	closed  bool
}

func (e *echoModem) respond(f *fakeModem) error {
	for {
		cmd, err := f.io.readCommand()
		if err != nil {
			return err
		}
		f.record(cmd)
		if err := e.handle(f, cmd); err != nil {
			return err
		}
	}
}

func (e *echoModem) handle(f *fakeModem, cmd string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	noise := ""
	if e.noisyURCs {
		noise = "\r\n+CIPRXGET: 1\r\n"
	}
	switch {
	case cmd == "AT+CIPSEND?":
		return f.io.send(fmt.Sprintf("\r\n+CIPSEND: %d\r\n\r\nOK\r\n", e.limit))
	case strings.HasPrefix(cmd, "AT+CIPSEND="):
		n, err := strconv.Atoi(strings.TrimPrefix(cmd, "AT+CIPSEND="))
		if err != nil || n < 1 || n > e.limit || e.closed {
			return f.io.send("\r\nERROR\r\n")
		}
		if err := f.io.send("\r\n> "); err != nil {
			return err
		}
		b, err := f.io.readData(n)
		if err != nil {
			return err
		}
		f.mu.Lock()
		f.payload.Write(b)
		f.mu.Unlock()
		e.chunks = append(e.chunks, n)
		e.txTotal += int64(n)
		wasEmpty := len(e.rx) == 0
		e.rx = append(e.rx, b...)
		reply := fmt.Sprintf("\r\nDATA ACCEPT:%d\r\n", n)
		if wasEmpty && e.notify {
			reply += "\r\n+CIPRXGET: 1\r\n"
		}
		if e.closeAfter > 0 && e.txTotal >= int64(e.closeAfter) {
			e.closed = true
			reply += "\r\nCLOSED\r\n"
		}
		return f.io.send(reply)
	case cmd == "AT+CIPRXGET=4":
		return f.io.send(fmt.Sprintf("%s\r\n+CIPRXGET: 4,%d\r\n\r\nOK\r\n", noise, len(e.rx)))
	case strings.HasPrefix(cmd, "AT+CIPRXGET=2,"):
		req, _ := strconv.Atoi(strings.TrimPrefix(cmd, "AT+CIPRXGET=2,"))
		n := min(req, len(e.rx))
		out := e.rx[:n]
		e.rx = e.rx[n:]
		return f.io.send(fmt.Sprintf("%s\r\n+CIPRXGET: 2,%d,%d\r\n%s\r\nOK\r\n", noise, n, len(e.rx), out))
	case cmd == "AT+CIPACK":
		return f.io.send(fmt.Sprintf("\r\n+CIPACK: %d, %d, 0\r\n\r\nOK\r\n", e.txTotal, e.txTotal))
	case cmd == "AT+CIPCLOSE=1":
		if e.closed {
			return f.io.send("\r\nERROR\r\n")
		}
		e.closed = true
		return f.io.send("\r\nCLOSE OK\r\n")
	case cmd == "AT+CIPSHUT":
		return f.io.send("\r\nSHUT OK\r\n")
	case cmd == "AT+CMEE?":
		return f.io.send("\r\n+CMEE: 2\r\n\r\nOK\r\n")
	case cmd == "AT+CPIN?":
		return f.io.send("\r\n+CPIN: READY\r\n\r\nOK\r\n")
	case cmd == "AT+CEREG?":
		return f.io.send("\r\n+CEREG: 0,1\r\n\r\nOK\r\n")
	case cmd == "AT+CIFSR":
		return f.io.send("\r\n10.1.2.3\r\n")
	case cmd == "AT+CPOWD=1":
		return f.io.send("\r\nNORMAL POWER DOWN\r\n")
	case strings.HasPrefix(cmd, "AT+CIPSTART="):
		e.closed = false
		return f.io.send("\r\nOK\r\n\r\nCONNECT OK\r\n")
	}
	return f.io.send("\r\nOK\r\n")
}

// dialEcho returns a Conn on an echoModem.
func dialEcho(t *testing.T, e *echoModem, opts Options) (*Modem, *Conn, *fakeModem) {
	t.Helper()
	f := startFake(t, e.respond)
	m := New(f.port, opts)
	t.Cleanup(func() {
		m.Close()
		if err := f.failure(); err != nil {
			t.Errorf("fake modem: %v", err)
		}
	})
	c, err := m.Dial(t.Context(), "127.0.0.1", 1883)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	return m, c, f
}
