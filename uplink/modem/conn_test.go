package modem

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"reflect"
	"testing"
	"time"

	"github.com/nbiot-uploader/uploader/uplink/fault"
)

// binaryPattern is payload that would break any text-based framing.
func binaryPattern(n int) []byte {
	seed := []byte("\x1a\x1b\r\nOK\r\n> \x00\xffERROR\r\n+CIPRXGET: 1\r\nCLOSED\r\n")
	b := make([]byte, n)
	for i := range b {
		b[i] = seed[i%len(seed)] ^ byte(i/len(seed))
	}
	return b
}

// Ensure a Write larger than several chunks is split at MaxChunk, arrives
// intact, and comes back intact through CIPRXGET=2 reads.
func TestConnEchoBinary(t *testing.T) {
	for _, tt := range []struct {
		name string
		echo *echoModem
		opts Options
	}{
		{"notified", &echoModem{limit: 1460, notify: true}, Options{QuickSend: true}},
		{"polled only", &echoModem{limit: 1460}, Options{QuickSend: true, PollInterval: 20 * time.Millisecond}},
		{"URCs inside every answer", &echoModem{limit: 1000, notify: true, noisyURCs: true}, Options{QuickSend: true, SendLimit: 700}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := tt.echo
			m, c, f := dialEcho(t, e, tt.opts)
			payload := binaryPattern(5000)
			n, err := c.Write(payload)
			if err != nil || n != len(payload) {
				t.Fatalf("Write = %d, %v", n, err)
			}
			if got := f.sent(); !bytes.Equal(got, payload) {
				t.Fatalf("module received %d bytes differing from the %d written", len(got), len(payload))
			}
			chunk := c.MaxChunk()
			var want []int
			for left := len(payload); left > 0; left -= chunk {
				want = append(want, min(left, chunk))
			}
			if !reflect.DeepEqual(e.chunks, want) {
				t.Errorf("chunks = %v, want %v", e.chunks, want)
			}
			if err := c.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
				t.Error(err)
			}
			got := make([]byte, len(payload))
			if _, err := io.ReadFull(c, got); err != nil {
				t.Fatalf("ReadFull: %v", err)
			}
			if !bytes.Equal(got, payload) {
				t.Errorf("echo differs from payload")
			}
			st := m.Stats()
			if st.CIPSends != int64(len(want)) || st.PayloadSent != int64(len(payload)) || st.PayloadRead != int64(len(payload)) {
				t.Errorf("stats = %+v", st)
			}
			sent, acked, unacked, err := c.Acked(t.Context())
			if err != nil || sent != int64(len(payload)) || acked != sent || unacked != 0 {
				t.Errorf("Acked = %d, %d, %d, %v", sent, acked, unacked, err)
			}
			if err := c.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
			if err := c.Close(); err != nil {
				t.Errorf("second Close: %v", err)
			}
			if _, err := c.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
				t.Errorf("Write after Close: %v, want net.ErrClosed", err)
			}
			if _, err := c.Read(got); !errors.Is(err, net.ErrClosed) {
				t.Errorf("Read after Close: %v, want net.ErrClosed", err)
			}
		})
	}
}

const dialOK = `AT+CIPSTART="TCP","127.0.0.1",1883`

func dialScripted(t *testing.T, opts Options, steps ...step) (*Conn, *fakeModem) {
	t.Helper()
	all := append([]step{
		{cmd: dialOK, reply: "\r\nOK\r\n\r\nCONNECT OK\r\n"},
		{cmd: "AT+CIPSEND?", reply: "\r\n+CIPSEND: 4\r\n\r\nOK\r\n"},
	}, steps...)
	m, f := newScripted(t, opts, all...)
	c, err := m.Dial(t.Context(), "127.0.0.1", 1883)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	return c, f
}

func TestConnWriteAnswers(t *testing.T) {
	tests := []struct {
		name    string
		opts    Options
		steps   []step
		want    int
		wantErr error
	}{
		{"data accept spacing variants", Options{QuickSend: true}, []step{
			{cmd: "AT+CIPSEND=4", reply: "\r\n> ", data: 4, after: "\r\nDATA ACCEPT:4\r\n"},
			{cmd: "AT+CIPSEND=2", reply: "\r\n> ", data: 2, after: "\r\nDATA ACCEPT: 2\r\n"},
		}, 6, nil},
		{"normal send waits for SEND OK", Options{}, []step{
			{cmd: "AT+CIPSEND=4", reply: "\r\n> ", data: 4, after: "\r\n+CIPRXGET: 1\r\n\r\nSEND OK\r\n"},
			{cmd: "AT+CIPSEND=2", reply: "\r\n> ", data: 2, after: "\r\nSEND OK\r\n"},
		}, 6, nil},
		{"CLOSED replaces SEND OK", Options{}, []step{
			{cmd: "AT+CIPSEND=4", reply: "\r\n> ", data: 4, after: "\r\nCLOSED\r\n"},
		}, 0, ErrRemoteClosed},
		{"SEND FAIL", Options{}, []step{
			{cmd: "AT+CIPSEND=4", reply: "\r\n> ", data: 4, after: "\r\nSEND FAIL\r\n"},
		}, 0, ErrSendFail},
		{"ERROR instead of prompt", Options{}, []step{
			{cmd: "AT+CIPSEND=4", reply: "\r\nERROR\r\n"},
		}, 0, ErrCommand},
		{"second chunk refused", Options{QuickSend: true}, []step{
			{cmd: "AT+CIPSEND=4", reply: "\r\n> ", data: 4, after: "\r\nDATA ACCEPT:4\r\n"},
			{cmd: "AT+CIPSEND=2", reply: "\r\n+CME ERROR: 3\r\n"},
		}, 4, &CMEError{}},
		{"wrong accept count", Options{QuickSend: true}, []step{
			{cmd: "AT+CIPSEND=4", reply: "\r\n> ", data: 4, after: "\r\nDATA ACCEPT:3\r\n"},
		}, 0, ErrProtocol},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, f := dialScripted(t, tt.opts, tt.steps...)
			n, err := c.Write([]byte("\x1a\r\n\x1b> "))
			if n != tt.want {
				t.Errorf("Write n = %d, want %d", n, tt.want)
			}
			var cme *CMEError
			if errors.As(tt.wantErr, new(*CMEError)) {
				if !errors.As(err, &cme) {
					t.Errorf("err = %v, want a CMEError", err)
				}
			} else if !errors.Is(err, tt.wantErr) {
				t.Errorf("err = %v, want %v", err, tt.wantErr)
			}
			if err == nil && !bytes.Equal(f.sent(), []byte("\x1a\r\n\x1b> ")) {
				t.Errorf("module got %q", f.sent())
			}
		})
	}
}

// Ensure "+CIPRXGET: 1" notifications before the CIPRXGET=4 and =2 answers
// are taken as URCs, not as the answers.
func TestConnReadURCsBeforeAnswers(t *testing.T) {
	c, _ := dialScripted(t, Options{},
		step{cmd: "AT+CIPRXGET=4", reply: "\r\n+CIPRXGET: 1\r\n\r\n+CIPRXGET: 4,6\r\n\r\nOK\r\n"},
		step{cmd: "AT+CIPRXGET=2,6", reply: "\r\n+CIPRXGET: 1\r\n\r\n+CIPRXGET: 1\r\n\r\n+CIPRXGET: 2,6,0\r\nOK\r\n\r\n\r\nOK\r\n"},
	)
	buf := make([]byte, 16)
	n, err := c.Read(buf)
	if err != nil || string(buf[:n]) != "OK\r\n\r\n" {
		t.Errorf("Read = %q, %v; want %q", buf[:n], err, "OK\r\n\r\n")
	}
}

// Ensure CLOSED lets the reader drain what the module still buffers, then
// reports the close as ErrRemoteClosed and io.EOF; a write fails at once.
func TestConnRemoteClose(t *testing.T) {
	c, _ := dialScripted(t, Options{PollInterval: time.Hour},
		step{cmd: "AT+CIPRXGET=4", reply: "\r\n+CIPRXGET: 4,0\r\n\r\nOK\r\n\r\n+CIPRXGET: 1\r\n\r\nCLOSED\r\n"},
		step{cmd: "AT+CIPRXGET=4", reply: "\r\n+CIPRXGET: 4,4\r\n\r\nOK\r\n"},
		step{cmd: "AT+CIPRXGET=2,4", reply: "\r\n+CIPRXGET: 2,4,0\r\n\x20\x02\x00\x05\r\nOK\r\n"},
		step{cmd: "AT+CIPRXGET=4", reply: "\r\nERROR\r\n"},
	)
	if err := c.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(c)
	if !bytes.Equal(got, []byte{0x20, 0x02, 0x00, 0x05}) {
		t.Errorf("read %x before the close, want 20020005", got)
	}
	if !errors.Is(err, ErrRemoteClosed) || !errors.Is(err, io.EOF) {
		t.Errorf("err = %v, want ErrRemoteClosed and io.EOF", err)
	}
	if _, err := c.Write([]byte("x")); !errors.Is(err, ErrRemoteClosed) {
		t.Errorf("Write after CLOSED: %v", err)
	}
}

// Ensure a fatal URC wakes a Read that is already waiting.
func TestConnFatalWakesRead(t *testing.T) {
	for _, tt := range []struct {
		urc  string
		want error
	}{
		{"+PDP: DEACT", ErrPDPDeact},
		{"RDY", ErrRebooted},
		{"SMS Ready", ErrRebooted},
	} {
		t.Run(tt.urc, func(t *testing.T) {
			c, f := dialScripted(t, Options{PollInterval: time.Hour},
				step{cmd: "AT+CIPRXGET=4", reply: "\r\n+CIPRXGET: 4,0\r\n\r\nOK\r\n", delay: 0},
				step{cmd: "*", reply: ""},
			)
			errc := make(chan error, 1)
			go func() {
				_, err := c.Read(make([]byte, 10))
				errc <- err
			}()
			// Dial took two replies; the third answers Read's first poll.
			if !f.waitReplies(3) {
				t.Fatalf("Read sent no poll; module got %q", f.cmds())
			}
			// The script answered the first poll; now the module speaks
			// unprompted.
			if err := injectURC(c, tt.urc); err != nil {
				t.Fatal(err)
			}
			select {
			case err := <-errc:
				var se *fault.StepError
				if !errors.Is(err, tt.want) || !errors.As(err, &se) {
					t.Errorf("Read err = %v, want StepError with %v", err, tt.want)
				}
			case <-time.After(3 * time.Second):
				t.Fatal("Read did not wake up")
			}
			if _, err := c.Write([]byte("x")); !errors.Is(err, tt.want) {
				t.Errorf("Write err = %v, want %v", err, tt.want)
			}
		})
	}
}

// injectURC feeds an unsolicited line through the same path the reader
// uses, as if the module had sent it between two commands.
func injectURC(c *Conn, urc string) error {
	c.m.onEvent(event{kind: evLine, line: urc})
	return nil
}

// Ensure read deadlines end a waiting Read with a timeout that matches
// os.ErrDeadlineExceeded, and a later deadline lets reads work again.
func TestConnReadDeadline(t *testing.T) {
	e := &echoModem{limit: 1460}
	_, c, _ := dialEcho(t, e, Options{PollInterval: 30 * time.Millisecond})
	if err := c.SetReadDeadline(time.Now().Add(100 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err := c.Read(make([]byte, 8))
	var ne net.Error
	if !errors.Is(err, os.ErrDeadlineExceeded) || !errors.Is(err, ErrTimeout) || !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("Read err = %v, want a deadline timeout", err)
	}
	// Without the deadline the Read would wait for ever: any bound of
	// seconds tells the two apart on a loaded machine.
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("deadline of 100ms took %v", d)
	}
	if err := c.SetDeadline(time.Time{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 8)
	n, err := c.Read(buf)
	if err != nil || string(buf[:n]) != "ping" {
		t.Errorf("Read = %q, %v", buf[:n], err)
	}
	if err := c.SetWriteDeadline(time.Now().Add(-time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write([]byte("late")); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("Write past deadline err = %v", err)
	}
}

// Ensure a missing prompt fails the write and no more payload is sent on a
// connection whose module state is unknown. At a write boundary the module
// gets exactly the announced count of filler bytes (in case the prompt comes
// late); in the middle of a split write it gets nothing, because filler
// would complete the peer's half-received write with junk.
func TestConnNoPrompt(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for the 5 s prompt timeout")
	}
	tests := []struct {
		name    string
		payload string
		steps   []step
		want    []string
	}{
		{"first chunk", "abcd", []step{{cmd: "AT+CIPSEND=4", reply: ""}},
			[]string{dialOK, "AT+CIPSEND?", "AT+CIPSEND=4", "\x00\x00\x00\x00"}},
		{"second chunk of a split write", "abcdef", []step{
			{cmd: "AT+CIPSEND=4", reply: "\r\n> ", data: 4, after: "\r\nDATA ACCEPT:4\r\n"},
			{cmd: "AT+CIPSEND=2", reply: ""},
		}, []string{dialOK, "AT+CIPSEND?", "AT+CIPSEND=4", "AT+CIPSEND=2"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, f := dialScripted(t, Options{QuickSend: true}, tt.steps...)
			_, err := c.Write([]byte(tt.payload))
			if !errors.Is(err, ErrTimeout) {
				t.Fatalf("err = %v, want ErrTimeout", err)
			}
			if cut := errors.Is(err, ErrSplitWriteCut); cut != (len(tt.payload) > 4) {
				t.Errorf("err = %v; ErrSplitWriteCut %v, want it only for the split write", err, cut)
			}
			_, err = c.Write([]byte("abcd"))
			if !errors.Is(err, ErrTimeout) {
				t.Errorf("second Write err = %v, want the first failure again", err)
			}
			// Every command the driver ever sent, no more and no fewer.
			if got := f.allCmds(t, c.m); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("module got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestConnAckedSpacing(t *testing.T) {
	c, _ := dialScripted(t, Options{},
		step{cmd: "AT+CIPACK", reply: "\r\n+CIPACK: 3, 3, 0\r\n\r\nOK\r\n"},
		step{cmd: "AT+CIPACK", reply: "\r\n+CIPACK: 12,10,2\r\n\r\nOK\r\n"},
	)
	for _, want := range [][3]int64{{3, 3, 0}, {12, 10, 2}} {
		s, a, u, err := c.Acked(t.Context())
		if err != nil || [3]int64{s, a, u} != want {
			t.Errorf("Acked = %d,%d,%d,%v want %v", s, a, u, err, want)
		}
	}
}

func TestConnCloseTolerates(t *testing.T) {
	c, f := dialScripted(t, Options{},
		step{cmd: "AT+CIPCLOSE=1", reply: "\r\nERROR\r\n"},
		step{cmd: "AT+CIPSHUT", reply: "\r\n+PDP: DEACT\r\n\r\nSHUT OK\r\n"},
	)
	if err := c.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if err := c.Close(); err != nil {
		t.Errorf("Close twice: %v", err)
	}
	if n := len(f.cmds()); n != 4 {
		t.Errorf("commands = %q", f.cmds())
	}
}
