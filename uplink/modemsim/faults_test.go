package modemsim

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestParseFaults(t *testing.T) {
	tests := []struct {
		name string
		spec string
		want Faults
	}{
		{"Empty", "", Faults{}},
		{"All", "remote-close=500,hang=20,error=CIPSEND:3,garbage=5,reboot=30,pdp-deact=1000," +
			"connect-fail,no-registration,lose-data=800,slow=200ms,csq=5,late-prompt=3",
			Faults{RemoteCloseAfterBytes: 500, HangAfterCommands: 20, ErrorOn: "CIPSEND", ErrorOnNth: 3,
				GarbageEvery: 5, RebootAfterCommands: 30, PDPDeactAfterBytes: 1000, ConnectFail: true,
				NoRegistration: true, LoseDataAfterBytes: 800, SlowAnswers: 200 * time.Millisecond, SignalQuality: 5,
				LatePromptOn: 3}},
		{"ErrorWithoutNth", "error=at+cipstart", Faults{ErrorOn: "CIPSTART", ErrorOnNth: 1}},
		{"ErrorOnQuery", "error=CEREG?:4", Faults{ErrorOn: "CEREG?", ErrorOnNth: 4}},
		{"ErrorOnTest", "error=CSQ=?", Faults{ErrorOn: "CSQ=?", ErrorOnNth: 1}},
		{"Spaces", " hang = 3 , connect-fail ", Faults{HangAfterCommands: 3, ConnectFail: true}},
		{"SignalZero", "csq=0", Faults{SignalQuality: CSQWeakest}},
		{"NoSignal", "csq=99", Faults{SignalQuality: CSQUnknown}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseFaults(tt.spec)
			if err != nil {
				t.Fatalf("ParseFaults(%q): %v", tt.spec, err)
			}
			if got != tt.want {
				t.Fatalf("ParseFaults(%q)=%+v, want %+v", tt.spec, got, tt.want)
			}
			again, err := ParseFaults(got.String())
			if err != nil || again != got {
				t.Fatalf("ParseFaults(%q)=%+v, %v; want the round trip %+v", got.String(), again, err, got)
			}
		})
	}
}

func TestParseFaultsErrors(t *testing.T) {
	for _, spec := range []string{
		"bogus", "hang", "hang=0", "hang=-1", "hang=x", "connect-fail=1", "error=", "error=CIPSEND:0",
		"error=CIP SEND", "error=?", "error=C?SQ", "error=CSQ=", "error=++CSQ", "slow=fast", "slow=-1s", "csq=32", "hang=1,hang=2",
	} {
		t.Run(spec, func(t *testing.T) {
			if _, err := ParseFaults(spec); !errors.Is(err, ErrFaultSpec) {
				t.Fatalf("ParseFaults(%q) error = %v, want ErrFaultSpec", spec, err)
			}
		})
	}
}

func TestParseVariants(t *testing.T) {
	got, err := ParseVariants("urc-inside, cifsr-ok,cipstatus-ok-last,data-accept-space," +
		"already-connect-error,connect-fail-state,rx-urc=every")
	want := Variants{URCInsideAnswers: true, CIFSRWithOK: true, CIPSTATUSOKLast: true, DataAcceptSpace: true,
		AlreadyConnectError: true, ConnectFailState: true, RxURC: RxURCEvery}
	if err != nil || got != want {
		t.Fatalf("ParseVariants()=%+v, %v; want %+v", got, err, want)
	}
	for _, spec := range []string{"nope", "rx-urc=sometimes"} {
		if _, err := ParseVariants(spec); !errors.Is(err, ErrFaultSpec) {
			t.Errorf("ParseVariants(%q) error = %v, want ErrFaultSpec", spec, err)
		}
	}
}

// connectQuick brings a module with echo off to CONNECT OK in quick or
// normal send mode with manual receive.
func connectQuick(t *testing.T, h *host, b *broker, quick bool) {
	t.Helper()
	h.cmd("ATE0", "ATE0\r\r\nOK\r\n")
	q := "0"
	if quick {
		q = "1"
	}
	h.cmd("AT+CIPRXGET=1;+CIPQSEND="+q, "\r\nOK\r\n")
	h.cmd(b.cipstart(), "\r\nOK\r\n")
	b.accept()
	h.expect("\r\nCONNECT OK\r\n")
}

func sendChunk(t *testing.T, h *host, payload string) {
	t.Helper()
	h.cmd("AT+CIPSEND="+itoa(len(payload)), "\r\n> ")
	h.send(payload)
}

func TestFaultRemoteClose(t *testing.T) {
	cfg := Fast()
	cfg.Faults.RemoteCloseAfterBytes = 10
	sim, h := startPipe(t, cfg)
	b := newBroker(t)
	connectQuick(t, h, b, true)
	sendChunk(t, h, "abcdef")
	h.expect("\r\nDATA ACCEPT:6\r\n")
	sendChunk(t, h, "ghijkl")
	h.expect("\r\nDATA ACCEPT:6\r\n\r\nCLOSED\r\n")
	b.expect("abcdefghij")
	b.expectEOF()
	h.cmd("AT+CIPSTATUS", "\r\nOK\r\n\r\nSTATE: TCP CLOSED\r\n")
	if got := sim.Accounting(); got.LostBytesUp != 2 || string(got.MQTTStream) != "abcdefghij" {
		t.Errorf("LostBytesUp=%d MQTTStream=%q, want 2 and the first 10 bytes", got.LostBytesUp, got.MQTTStream)
	}
	// The fault fires once: the next connection carries everything.
	h.cmd(b.cipstart(), "\r\nOK\r\n")
	b.accept()
	h.expect("\r\nCONNECT OK\r\n")
	sendChunk(t, h, "0123456789ABC")
	h.expect("\r\nDATA ACCEPT:13\r\n")
	b.expect("0123456789ABC")
	if got := sim.Accounting(); len(got.MQTTStreams) != 2 || string(got.MQTTStreams[1]) != "0123456789ABC" {
		t.Errorf("MQTTStreams=%q, want the second connection's bytes apart", got.MQTTStreams)
	}
}

func TestFaultRemoteCloseNormalSend(t *testing.T) {
	cfg := Fast()
	cfg.Faults.RemoteCloseAfterBytes = 3
	_, h := startPipe(t, cfg)
	b := newBroker(t)
	connectQuick(t, h, b, false)
	sendChunk(t, h, "abcdef")
	// CLOSED replaces SEND OK.
	h.expect("\r\nCLOSED\r\n")
	b.expect("abc")
	b.expectEOF()
}

func TestFaultHang(t *testing.T) {
	cfg := Fast()
	cfg.Faults.HangAfterCommands = 2
	sim, h := startPipe(t, cfg)
	h.cmd("AT", "AT\r\r\nOK\r\n")
	h.cmd("AT", "AT\r\r\nOK\r\n")
	h.send("AT\r")
	h.quiet()
	h.send("AT\r")
	h.quiet()
	// Only a power cycle brings it back.
	sim.PowerOff()
	sim.PowerOn()
	h.expect("\r\nRDY\r\n\r\n+CFUN: 1\r\n\r\n+CPIN: READY\r\n\r\nSMS Ready\r\n")
	h.cmd("AT", "AT\r\r\nOK\r\n")
	// The line that hit the hang is counted; a hung module parses nothing.
	if got := sim.Accounting().ATCommands; got != 4 {
		t.Errorf("ATCommands=%d, want 4", got)
	}
}

func TestFaultErrorOnNth(t *testing.T) {
	cfg := Fast()
	cfg.Faults.ErrorOn, cfg.Faults.ErrorOnNth = "CSQ", 2
	_, h := startPipe(t, cfg)
	h.cmd("ATE0", "ATE0\r\r\nOK\r\n")
	h.cmd("AT+CSQ", "\r\n+CSQ: 20,99\r\n\r\nOK\r\n")
	h.cmd("AT+CSQ=?", "\r\n+CSQ: (0-31,99),(0-7,99)\r\n\r\nOK\r\n") // another form: not counted
	h.cmd("AT+CSQ", "\r\nERROR\r\n")
	h.cmd("AT+CSQ", "\r\n+CSQ: 20,99\r\n\r\nOK\r\n")
}

// Ensure "error=CIPSEND:1" hits the first data send, not the size query.
func TestFaultErrorOnFirstSend(t *testing.T) {
	cfg := Fast()
	cfg.Faults.ErrorOn = "CIPSEND"
	_, h := startPipe(t, cfg)
	b := newBroker(t)
	connectQuick(t, h, b, true)
	h.cmd("AT+CIPSEND?", "\r\n+CIPSEND: 1460\r\n\r\nOK\r\n")
	h.cmd("AT+CIPSEND=2", "\r\nERROR\r\n")
	h.cmd("AT+CIPSEND=2", "\r\n> ")
}

func TestFaultErrorOnQuery(t *testing.T) {
	cfg := Fast()
	cfg.Faults.ErrorOn, cfg.Faults.ErrorOnNth = "CEREG?", 1
	_, h := startPipe(t, cfg)
	h.cmd("ATE0", "ATE0\r\r\nOK\r\n")
	h.cmd("AT+CEREG=1", "\r\nOK\r\n")
	h.cmd("AT+CEREG?", "\r\nERROR\r\n")
	h.cmd("AT+CEREG?", "\r\n+CEREG: 1,1\r\n\r\nOK\r\n")
}

func TestFaultGarbage(t *testing.T) {
	cfg := Fast()
	cfg.Faults.GarbageEvery = 3
	_, h := startPipe(t, cfg)
	h.cmd("ATE0", "ATE0\r\r\nOK\r\n")
	h.cmd("AT", "\r\nOK\r\n")
	// The third answer is clean; the noise follows it.
	h.cmd("AT", "\r\nOK\r\n")
	h.send("AT\r")
	out := h.expectContains("\r\nOK\r\n")
	noise := strings.TrimSuffix(out, "\r\nOK\r\n")
	if len(noise) < 3 {
		t.Fatalf("answer %q, want garbage before OK", out)
	}
	for _, c := range []byte(noise) {
		if c < 0x80 {
			t.Fatalf("garbage %q holds byte %#x, want only 0x80-0xFF", out, c)
		}
	}
	h.cmd("AT", "\r\nOK\r\n")
}

func TestFaultReboot(t *testing.T) {
	cfg := Fast()
	cfg.Faults.RebootAfterCommands = 3
	sim, h := startPipe(t, cfg)
	b := newBroker(t)
	h.cmd("ATE0", "ATE0\r\r\nOK\r\n")
	h.cmd(b.cipstart(), "\r\nOK\r\n")
	b.accept()
	h.expect("\r\nCONNECT OK\r\n")
	h.cmd("AT", "\r\nOK\r\n\r\nRDY\r\n\r\n+CFUN: 1\r\n\r\n+CPIN: READY\r\n\r\nSMS Ready\r\n")
	b.expectEOF()
	// State is lost: echo on, bearer back to IP INITIAL.
	h.cmd("AT+CIPSTATUS", "AT+CIPSTATUS\r\r\nOK\r\n\r\nSTATE: IP INITIAL\r\n")
	if got := sim.Accounting(); got.Reboots != 1 || got.RadioOnPeriods != 2 {
		t.Errorf("Reboots=%d RadioOnPeriods=%d, want 1 and 2", got.Reboots, got.RadioOnPeriods)
	}
}

func TestFaultPDPDeact(t *testing.T) {
	cfg := Fast()
	cfg.Faults.PDPDeactAfterBytes = 5
	_, h := startPipe(t, cfg)
	b := newBroker(t)
	connectQuick(t, h, b, false)
	sendChunk(t, h, "abcdefgh")
	h.expect("\r\n+PDP: DEACT\r\n")
	b.expect("abcde")
	b.expectEOF()
	h.cmd("AT+CIPSTATUS", "\r\nOK\r\n\r\nSTATE: PDP DEACT\r\n")
	h.cmd("AT+CIPSEND=1", "\r\nERROR\r\n")
	h.cmd(b.cipstart(), "\r\nERROR\r\n")
	h.cmd("AT+CIPSHUT", "\r\nSHUT OK\r\n")
	h.cmd("AT+CIPSTATUS", "\r\nOK\r\n\r\nSTATE: IP INITIAL\r\n")
}

func TestFaultNoRegistration(t *testing.T) {
	for _, tt := range []struct {
		name   string
		faults Faults
	}{
		{"NoRegistration", Faults{NoRegistration: true}},
		{"NoSignal", Faults{SignalQuality: CSQUnknown}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := NBIoT()
			cfg.VirtualClock = true
			cfg.Baud = 0
			cfg.Faults = tt.faults
			sim, h := startPipe(t, cfg)
			h.cmd("ATE0", "ATE0\r\r\nOK\r\n")
			for range 3 {
				h.cmd("AT+CEREG?", "\r\n+CEREG: 0,2\r\n\r\nOK\r\n")
			}
			h.cmd("AT+CGATT?", "\r\n+CGATT: 0\r\n\r\nOK\r\n")
			h.cmd("AT+CSTT=\"nbiot\"", "\r\nOK\r\n")
			h.cmd("AT+CIICR", "\r\nERROR\r\n")
			h.cmd("AT+CIPSTATUS", "\r\nOK\r\n\r\nSTATE: PDP DEACT\r\n")
			got := sim.Accounting()
			// Polls cost turnaround time only; the clock never jumps to an attach.
			if got.AttachSeconds != got.RadioOnSeconds || got.RadioOnSeconds > 1 {
				t.Errorf("AttachSeconds=%v RadioOnSeconds=%v, want equal and well under the 5 s attach",
					got.AttachSeconds, got.RadioOnSeconds)
			}
		})
	}
}

func TestFaultLoseData(t *testing.T) {
	cfg := Fast()
	cfg.Faults.LoseDataAfterBytes = 4
	sim, h := startPipe(t, cfg)
	b := newBroker(t)
	connectQuick(t, h, b, false)
	sendChunk(t, h, "abcdef")
	h.expect("\r\nSEND OK\r\n")
	sendChunk(t, h, "ghi")
	h.expect("\r\nSEND OK\r\n")
	b.expect("abcd")
	h.cmd("AT+CIPACK", "\r\n+CIPACK: 9,9,0\r\n\r\nOK\r\n")
	h.cmd("AT+CIPCLOSE=1", "\r\nCLOSE OK\r\n")
	b.expectEOF()
	if got := sim.Accounting(); got.LostBytesUp != 5 || got.MQTTBytesUp != 4 {
		t.Errorf("LostBytesUp=%d MQTTBytesUp=%d, want 5 and 4", got.LostBytesUp, got.MQTTBytesUp)
	}
}

func TestFaultSlowAnswers(t *testing.T) {
	cfg := Fast()
	cfg.Faults.SlowAnswers = 40 * time.Millisecond
	_, h := startPipe(t, cfg)
	start := time.Now()
	h.cmd("AT", "AT\r\r\nOK\r\n")
	// A lower bound only: the answer may come later on a loaded machine.
	if d := time.Since(start); d < cfg.Faults.SlowAnswers {
		t.Errorf("answer after %v, want at least %v", d, cfg.Faults.SlowAnswers)
	}
}

func TestFaultSignalQuality(t *testing.T) {
	cfg := Fast()
	cfg.Faults.SignalQuality = CSQWeakest
	sim, h := startPipe(t, cfg)
	h.cmd("ATE0", "ATE0\r\r\nOK\r\n")
	h.cmd("AT+CSQ", "\r\n+CSQ: 0,99\r\n\r\nOK\r\n")
	if err := sim.SetFaults(Faults{SignalQuality: 7}); err != nil {
		t.Fatal(err)
	}
	h.cmd("AT+CSQ", "\r\n+CSQ: 7,99\r\n\r\nOK\r\n")
	if err := sim.SetFaults(Faults{SignalQuality: 40}); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("SetFaults(csq 40) error = %v, want ErrInvalidConfig", err)
	}
}

// Ensure lifting NoRegistration lets the attach complete.
func TestFaultNoRegistrationLifted(t *testing.T) {
	cfg := virtualConfig()
	cfg.AttachDelay = 2 * time.Second
	cfg.Turnaround = 100 * time.Millisecond
	cfg.Faults.NoRegistration = true
	sim, h := startPipe(t, cfg)
	h.cmd("ATE0", "ATE0\r\r\nOK\r\n")
	h.cmd("AT+CEREG?", "\r\n+CEREG: 0,2\r\n\r\nOK\r\n")
	if err := sim.SetFaults(Faults{}); err != nil {
		t.Fatal(err)
	}
	h.cmd("AT+CEREG?", "\r\n+CEREG: 0,1\r\n\r\nOK\r\n")
	// Blocked for 0.2 s, then a full attach of 2 s from the moment it was lifted.
	if got := sim.Accounting(); !approx(got.AttachSeconds, 2.2) {
		t.Errorf("AttachSeconds=%v, want 2.2", got.AttachSeconds)
	}
}

// Ensure "late-prompt=2" holds the second data send's prompt back for
// LatePromptDelay while the module already takes what the host sends as
// payload: a command written in that time completes the chunk.
func TestFaultLatePrompt(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for the 6 s late prompt")
	}
	cfg := Fast()
	cfg.Faults.LatePromptOn = 2
	_, h := startPipe(t, cfg)
	b := newBroker(t)
	connectQuick(t, h, b, true)
	sendChunk(t, h, "abc")
	h.expect("\r\nDATA ACCEPT:3\r\n")
	start := time.Now()
	h.send("AT+CIPSEND=6\r")
	h.send("AT+CSQ\r") // 7 bytes: six complete the send, the CR is a command line
	// Nothing before the prompt (expect takes the very next bytes), and
	// the prompt no sooner than LatePromptDelay (checked below).
	h.expectWithin(LatePromptDelay+testTimeout, "\r\n> ")
	if d := time.Since(start); d < LatePromptDelay {
		t.Errorf("prompt after %v, want %v", d, LatePromptDelay)
	}
	h.expectContains("DATA ACCEPT:6\r\n")
	b.expect("abcAT+CSQ")
}
