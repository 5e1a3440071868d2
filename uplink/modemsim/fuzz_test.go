package modemsim

import (
	"bytes"
	"context"
	"io"
	"net"
	"testing"
	"time"
)

// runModule feeds input to a module on the calling goroutine, with an
// in-memory echo peer behind AT+CIPSTART, and returns what it wrote.
func runModule(t *testing.T, cfg Config, chunks ...[]byte) []byte {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cfg.VirtualClock = true
	cfg.VirtualIdle = time.Millisecond
	cfg.Dialer = func(context.Context, string, string) (net.Conn, error) {
		a, b := net.Pipe()
		go func() {
			_, _ = io.Copy(b, b)
			_ = b.Close()
		}()
		return a, nil
	}
	var out bytes.Buffer
	m := newModule(ctx, cfg.withDefaults(), &out)
	settle := func() {
		for range 1000 {
			select {
			case fn := <-m.posted:
				fn()
				continue
			default:
			}
			if i, ev := m.nextEvent(); ev != nil {
				m.fire(i)
				continue
			}
			// Give a dial or the echo peer a moment to report.
			select {
			case fn := <-m.posted:
				fn()
				continue
			case <-time.After(time.Millisecond):
			}
			return
		}
	}
	for _, c := range chunks {
		m.input(c)
		settle()
	}
	cancel()
	m.dropLink()
	m.closeConns()
	m.wg.Wait()
	if got := m.acct.snapshot().UARTBytesOut; got != int64(out.Len()) {
		t.Fatalf("UARTBytesOut=%d, but %d bytes were written", got, out.Len())
	}
	return out.Bytes()
}

// FuzzModuleInput throws arbitrary bytes at the command parser, the data
// prompt and the hex decoder: the module must neither panic nor hang.
func FuzzModuleInput(f *testing.F) {
	for _, seed := range []string{
		"AT\r",
		"ATE0;+CSQ;+CPIN?\r",
		"AT+CIPSTART=\"TCP\",\"127.0.0.1\",1883\rAT+CIPSEND=5\r12345AT+CIPRXGET=2,10\r",
		"AT+CIPRXGET=1;+CIPQSEND=1\rAT+CIPSTART=\"TCP\",\"h\",\"1\"\rAT+CIPSEND\rab\x1aAT+CIPRXGET=4\r",
		"AT+CIPSENDHEX=1\rAT+CIPSTART=\"TCP\",\"h\",1\rAT+CIPSEND\r10 0C 1A AT+CIPACK\r",
		"AT+CSTT=\"apn\",\"u\",\"p\";+CIICR;+CIFSR;E0\rAT+CIPSTATUS\rAT+CIPSHUT\r",
		"AT+CFUN=1,1\rAT+CPOWD=1\rAT\r",
		"AT+CEREG=2;+CEREG?;+CGATT=0;+CGATT=1\r",
		"AT+\"\r",
		"at+cbandcfg=\"NB-IOT\",8,20;+cbandcfg?\r",
	} {
		f.Add("", []byte(seed), []byte("AT+CIPRXGET=3,730\r"))
	}
	f.Add("reboot=2,garbage=1", []byte("AT\rAT\rAT\r"), []byte("AT+CSQ\r"))
	f.Add("remote-close=3,lose-data=1,pdp-deact=5",
		[]byte("AT+CIPSTART=\"TCP\",\"h\",1\rAT+CIPSEND=4\rabcd"), []byte("AT+CIPSEND=4\rabcd"))
	f.Add("hang=1,error=CSQ", []byte("AT+CSQ\r"), []byte("AT\r"))
	f.Fuzz(func(t *testing.T, faults string, first, second []byte) {
		cfg := Fast()
		if f, err := ParseFaults(faults); err == nil {
			// A real wait per answer would only slow the fuzzer down.
			f.SlowAnswers = 0
			cfg.Faults = f
		}
		runModule(t, cfg, first, second)
	})
}

// FuzzSplitCommands checks the command-line splitter on its own.
func FuzzSplitCommands(f *testing.F) {
	for _, seed := range []string{"", "E0", "+CSQ", "+CIFSR;E0", `+CSTT="a;b","u"`, "&W", "+CIPSEND=?", "I0V1"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, body string) {
		cmds, err := splitCommands(body)
		if err != nil {
			return
		}
		for _, c := range cmds {
			if c.name == "" {
				t.Fatalf("splitCommands(%q) gave a command without a name: %+v", body, cmds)
			}
			_ = splitArgs(c.arg)
		}
	})
}

// FuzzParseFaults checks that what parses formats back to the same faults.
func FuzzParseFaults(f *testing.F) {
	f.Add("remote-close=500,hang=20,error=CIPSEND:3,garbage=5,reboot=30,pdp-deact=1000")
	f.Add("connect-fail,no-registration,lose-data=800,slow=200ms,csq=0")
	f.Fuzz(func(t *testing.T, spec string) {
		faults, err := ParseFaults(spec)
		if err != nil {
			return
		}
		again, err := ParseFaults(faults.String())
		if err != nil || again != faults {
			t.Fatalf("ParseFaults(%q)=%+v; String %q parses to %+v, %v", spec, faults, faults.String(), again, err)
		}
	})
}

// Ensure the synchronous harness sees a full session, so the fuzzer does
// reach the data paths.
func TestRunModuleSession(t *testing.T) {
	out := runModule(t, Fast(),
		[]byte("ATE0;+CIPRXGET=1;+CIPQSEND=1\r"),
		[]byte(`AT+CIPSTART="TCP","peer",1883`+"\r"),
		[]byte("AT+CIPSEND=4\r"),
		[]byte("ping"),
		[]byte("AT+CIPRXGET=2,10\r"),
	)
	want := "ATE0;+CIPRXGET=1;+CIPQSEND=1\r\r\nOK\r\n" +
		"\r\nOK\r\n\r\nCONNECT OK\r\n" +
		"\r\n> \r\nDATA ACCEPT:4\r\n\r\n+CIPRXGET: 1\r\n" +
		"\r\n+CIPRXGET: 2,4,0\r\nping\r\nOK\r\n"
	if string(out) != want {
		t.Fatalf("module wrote %q, want %q", out, want)
	}
}
