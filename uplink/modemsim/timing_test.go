package modemsim

import (
	"math"
	"strings"
	"testing"
	"time"
)

// approx compares modelled seconds, which are exact up to float rounding.
func approx(got, want float64) bool { return math.Abs(got-want) < 1e-6 }

func virtualConfig() Config {
	cfg := Fast()
	cfg.VirtualClock = true
	return cfg
}

// Ensure the UART carries 10 bits per byte each way on the virtual clock.
func TestVirtualUARTPacing(t *testing.T) {
	cfg := virtualConfig()
	cfg.Baud = 9600
	sim, h := startPipe(t, cfg)
	h.cmd("AT", "AT\r\r\nOK\r\n")
	got := sim.Accounting()
	// 3 bytes in, 3 echoed and 6 answered: 12 bytes at 960 bytes/s.
	if want := 12.0 / 960; !approx(got.ElapsedSeconds, want) {
		t.Errorf("ElapsedSeconds=%v, want %v", got.ElapsedSeconds, want)
	}
	if got.UARTBytesIn != 3 || got.UARTBytesOut != 9 {
		t.Errorf("UART bytes in/out = %d/%d, want 3/9", got.UARTBytesIn, got.UARTBytesOut)
	}
}

func TestVirtualTurnaround(t *testing.T) {
	cfg := virtualConfig()
	cfg.Turnaround = 50 * time.Millisecond
	sim, h := startPipe(t, cfg)
	h.cmd("ATE0", "ATE0\r\r\nOK\r\n")
	h.cmd("AT", "\r\nOK\r\n")
	h.cmd("AT+CSQ", "\r\n+CSQ: 20,99\r\n\r\nOK\r\n")
	if got := sim.Accounting().ElapsedSeconds; !approx(got, 0.15) {
		t.Errorf("ElapsedSeconds=%v, want 0.15", got)
	}
}

// linkConfig has a 1 s round trip, 0.2 s connect extra and 1000 B/s uplink.
func linkConfig() Config {
	cfg := virtualConfig()
	cfg.RoundTrip = time.Second
	cfg.ConnectExtra = 200 * time.Millisecond
	cfg.UplinkRate = 1000
	return cfg
}

// Ensure normal send mode costs air time plus one round trip per chunk.
func TestVirtualNormalSend(t *testing.T) {
	sim, h := startPipe(t, linkConfig())
	b := newBroker(t)
	connectQuick(t, h, b, false)
	if got := sim.Accounting().ElapsedSeconds; !approx(got, 1.2) {
		t.Errorf("CONNECT OK at %v s, want 1.2", got)
	}
	chunk := string(make([]byte, 460)) // 500 bytes on the air: 0.5 s
	for _, want := range []float64{2.7, 4.2} {
		sendChunk(t, h, chunk)
		h.expect("\r\nSEND OK\r\n")
		if got := sim.Accounting().ElapsedSeconds; !approx(got, want) {
			t.Errorf("SEND OK at %v s, want %v", got, want)
		}
	}
}

// Ensure quick send lets the UART run ahead of the air, and that data from
// the broker arrives one round trip after the air transfer ends.
func TestVirtualQuickSendPipelines(t *testing.T) {
	sim, h := startPipe(t, linkConfig())
	b := newBroker(t)
	connectQuick(t, h, b, true)
	chunk := string(make([]byte, 460))
	for range 3 {
		sendChunk(t, h, chunk)
		h.expect("\r\nDATA ACCEPT:460\r\n")
	}
	if got := sim.Accounting().ElapsedSeconds; !approx(got, 1.2) {
		t.Errorf("after 3 quick sends the clock is at %v s, want 1.2", got)
	}
	h.cmd("AT+CIPACK", "\r\n+CIPACK: 1380,0,1380\r\n\r\nOK\r\n")
	b.expect(chunk + chunk + chunk)
	b.send("ok")
	h.expect("\r\n+CIPRXGET: 1\r\n")
	// Air ends at 1.2 + 3 * 0.5 = 2.7 s; the answer is back at 3.7 s.
	if got := sim.Accounting().ElapsedSeconds; !approx(got, 3.7) {
		t.Errorf("broker data at %v s, want 3.7", got)
	}
	h.cmd("AT+CIPACK", "\r\n+CIPACK: 1380,1380,0\r\n\r\nOK\r\n")
}

// Ensure an early registration poll moves the virtual clock to the attach
// instant, so radio-on time does not depend on the poll cadence.
func TestVirtualRegistration(t *testing.T) {
	cfg := NBIoT()
	cfg.VirtualClock = true
	cfg.Baud, cfg.Turnaround = 0, 0
	cfg.StartRadioOff = true
	sim, h := startPipe(t, cfg)
	if sim.RadioOn() {
		t.Fatal("RadioOn() = true with StartRadioOff")
	}
	h.cmd("ATE0", "ATE0\r\r\nOK\r\n")
	h.cmd("AT+CEREG?", "\r\n+CEREG: 0,0\r\n\r\nOK\r\n")
	h.cmd("AT+CFUN=1", "\r\nOK\r\n\r\n+CPIN: READY\r\n")
	if !sim.RadioOn() {
		t.Fatal("RadioOn() = false after AT+CFUN=1")
	}
	h.cmd("AT+CEREG?", "\r\n+CEREG: 0,1\r\n\r\nOK\r\n")
	h.cmd("AT+CFUN=0", "\r\nOK\r\n\r\n+CPIN: NOT READY\r\n")
	got := sim.Accounting()
	if !approx(got.RadioOnSeconds, 5) || !approx(got.AttachSeconds, 5) || got.RadioOnPeriods != 1 {
		t.Errorf("RadioOnSeconds=%v AttachSeconds=%v periods=%d, want 5, 5, 1",
			got.RadioOnSeconds, got.AttachSeconds, got.RadioOnPeriods)
	}
}

// Ensure a whole NB-IoT window is modelled in seconds but runs in far less
// real time.
func TestVirtualNBIoTWindow(t *testing.T) {
	cfg := NBIoT()
	cfg.VirtualClock = true
	cfg.StartRadioOff = true
	sim, h := startPipe(t, cfg)
	b := newBroker(t)
	start := time.Now()
	h.cmd("ATE0", "ATE0\r\r\nOK\r\n")
	h.cmd("AT+CFUN=1", "\r\nOK\r\n\r\n+CPIN: READY\r\n")
	h.cmd("AT+CEREG?", "\r\n+CEREG: 0,1\r\n\r\nOK\r\n")
	h.cmd("AT+CIPSHUT", "\r\nSHUT OK\r\n")
	h.cmd("AT+CIPMUX=0;+CIPRXGET=1;+CIPQSEND=0", "\r\nOK\r\n")
	h.cmd(`AT+CSTT="nbiot"`, "\r\nOK\r\n")
	h.cmd("AT+CIICR", "\r\nOK\r\n")
	h.cmd("AT+CIFSR", "\r\n10.78.245.128\r\n")
	h.cmd(b.cipstart(), "\r\nOK\r\n")
	b.accept()
	h.expect("\r\nCONNECT OK\r\n")
	sendChunk(t, h, string(make([]byte, 460)))
	h.expect("\r\nSEND OK\r\n")
	h.cmd("AT+CIPCLOSE=1", "\r\nCLOSE OK\r\n")
	h.cmd("AT+CFUN=0", "\r\nOK\r\n\r\n+PDP: DEACT\r\n\r\n+CPIN: NOT READY\r\n")
	real := time.Since(start)
	got := sim.Accounting()
	// Attach 5 (the registration poll's turnaround falls inside it) + PDP 1
	// + connect 1.2 + air 0.2 + round trip 1, plus 9 more commands of 50 ms
	// while the radio is on, plus the UART.
	floor := 5 + 1 + 1.2 + 0.2 + 1 + 9*0.05
	if got.RadioOnSeconds < floor || got.RadioOnSeconds > floor+0.5 {
		t.Errorf("RadioOnSeconds=%v, want %v plus UART time", got.RadioOnSeconds, floor)
	}
	if real.Seconds() > got.RadioOnSeconds/2 {
		t.Errorf("the window took %v of real time for %v modelled seconds", real, got.RadioOnSeconds)
	}
}

// Ensure real-time mode paces the UART: a lower bound only, so a loaded
// machine cannot make it fail.
func TestRealTimeUARTPacing(t *testing.T) {
	cfg := Fast()
	cfg.Baud = 9600
	_, h := startPipe(t, cfg)
	start := time.Now()
	h.cmd("AT+CSQ", "AT+CSQ\r\r\n+CSQ: 20,99\r\n\r\nOK\r\n")
	// 7 bytes in, 28 out at 960 bytes/s.
	if d, want := time.Since(start), 35*time.Second/960; d < want {
		t.Errorf("exchange took %v, want at least %v", d, want)
	}
}

func TestRealTimeRoundTrip(t *testing.T) {
	cfg := Fast()
	cfg.RoundTrip = 30 * time.Millisecond
	_, h := startPipe(t, cfg)
	b := newBroker(t)
	h.cmd("ATE0", "ATE0\r\r\nOK\r\n")
	// Timed from before the command: the module's round trip starts when
	// it reads AT+CIPSTART, before its OK reaches the test.
	start := time.Now()
	h.cmd(b.cipstart(), "\r\nOK\r\n")
	b.accept()
	h.expect("\r\nCONNECT OK\r\n")
	if d := time.Since(start); d < cfg.RoundTrip {
		t.Errorf("CONNECT OK after %v, want at least the %v round trip", d, cfg.RoundTrip)
	}
	sendChunk(t, h, "x")
	start = time.Now()
	h.expect("\r\nSEND OK\r\n")
	if d := time.Since(start); d < cfg.RoundTrip {
		t.Errorf("SEND OK after %v, want at least the %v round trip", d, cfg.RoundTrip)
	}
}

// Ensure commands that need the attach wait for it instead of failing.
func TestVirtualBearerWaitsForAttach(t *testing.T) {
	tests := []struct {
		name  string
		lines [][2]string
		want  float64
	}{
		{"CIICR", [][2]string{
			{`AT+CSTT="nbiot"`, "\r\nOK\r\n"},
			{"AT+CIICR", "\r\nOK\r\n"},
		}, 5 + 1},
		{"CGATT", [][2]string{{"AT+CGATT=1", "\r\nOK\r\n"}}, 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := virtualConfig()
			cfg.AttachDelay, cfg.PDPDelay = 5*time.Second, time.Second
			sim, h := startPipe(t, cfg)
			h.cmd("ATE0", "ATE0\r\r\nOK\r\n")
			for _, l := range tt.lines {
				h.cmd(l[0], l[1])
			}
			if got := sim.Accounting().ElapsedSeconds; !approx(got, tt.want) {
				t.Errorf("ElapsedSeconds=%v, want %v", got, tt.want)
			}
		})
	}
}

// Ensure AT+CIPSTART from IP INITIAL pays attach and PDP activation.
func TestVirtualConnectShortcut(t *testing.T) {
	cfg := linkConfig()
	cfg.AttachDelay, cfg.PDPDelay = 5*time.Second, time.Second
	sim, h := startPipe(t, cfg)
	b := newBroker(t)
	connectQuick(t, h, b, true)
	if got := sim.Accounting().ElapsedSeconds; !approx(got, 5+1+1.2) {
		t.Errorf("CONNECT OK at %v s, want 7.2", got)
	}
}

// Ensure, in real time, that the broker's answer to a chunk comes a round
// trip after that chunk lands, not after the chunks the host queued behind
// it: the answer to A is at the module while B is still on the air, so
// AT+CIPACK then shows A acknowledged and B not.
func TestRealTimeAnswerFollowsItsChunk(t *testing.T) {
	cfg := Fast()
	cfg.UplinkRate = 1000 // 960 bytes + 40 of header: 1 s on the air
	cfg.RoundTrip = 200 * time.Millisecond
	_, h := startPipe(t, cfg)
	b := newBroker(t)
	connectQuick(t, h, b, true)
	a, bb := strings.Repeat("a", 960), strings.Repeat("b", 960)
	sendChunk(t, h, a)
	h.expect("\r\nDATA ACCEPT:960\r\n")
	sendChunk(t, h, bb)
	h.expect("\r\nDATA ACCEPT:960\r\n")
	b.expect(a) // A lands at 1 s, B at 2 s
	b.send("r")
	h.expect("\r\n+CIPRXGET: 1\r\n") // at 1.2 s, not 2.2 s
	h.cmd("AT+CIPACK", "\r\n+CIPACK: 1920,960,960\r\n\r\nOK\r\n")
	b.expect(bb)
}
