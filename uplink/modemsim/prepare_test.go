package modemsim

import (
	"testing"
	"time"
)

// Ensure the IP stack can be configured while the module is still
// attaching, as sim7000-at.md §5.1–5.2 allow (CIPSHUT, CIPMUX, CIPRXGET,
// CIPQSEND, CIPSENDHEX and CSTT need IP INITIAL, not the network), that it
// costs no attach time, and that the state machine still holds: CSTT and
// CIPMUX only in IP INITIAL, CIICR only in IP START and only once
// registered, and a radio switched off meanwhile loses the IP START state.
func TestVirtualPrepareBeforeAttach(t *testing.T) {
	prepare := func(h *host) {
		h.cmd("AT+CIPSHUT", "\r\nSHUT OK\r\n")
		h.cmd("AT+CIPMUX=0", "\r\nOK\r\n")
		h.cmd("AT+CIPRXGET=1", "\r\nOK\r\n")
		h.cmd("AT+CIPQSEND=1", "\r\nOK\r\n")
		h.cmd("AT+CIPSENDHEX=0", "\r\nOK\r\n")
		h.cmd(`AT+CSTT="nbiot","user","pw"`, "\r\nOK\r\n")
	}
	start := func(t *testing.T) (*Sim, *host) {
		cfg := virtualConfig()
		cfg.AttachDelay, cfg.PDPDelay = 5*time.Second, time.Second
		cfg.StartRadioOff = true
		sim, h := startPipe(t, cfg)
		h.cmd("ATE0", "ATE0\r\r\nOK\r\n")
		h.cmd("AT+CFUN=1", "\r\nOK\r\n\r\n+CPIN: READY\r\n")
		return sim, h
	}

	t.Run("configured while attaching, activated once registered", func(t *testing.T) {
		sim, h := start(t)
		prepare(h)
		h.cmd("AT+CIPSTATUS", "\r\nOK\r\n\r\nSTATE: IP START\r\n")
		if got := sim.Accounting(); got.ElapsedSeconds != 0 || got.AttachSeconds != got.RadioOnSeconds {
			t.Errorf("after the preparation: elapsed %v s, attach %v of %v radio s; want no time and still attaching",
				got.ElapsedSeconds, got.AttachSeconds, got.RadioOnSeconds)
		}
		h.cmd(`AT+CSTT="nbiot"`, "\r\nERROR\r\n") // only in IP INITIAL
		h.cmd("AT+CIPMUX=0", "\r\nERROR\r\n")     // only in IP INITIAL
		h.cmd("AT+CEREG?", "\r\n+CEREG: 0,1\r\n\r\nOK\r\n")
		h.cmd("AT+CIICR", "\r\nOK\r\n")
		h.cmd("AT+CIFSR", "\r\n"+DefaultLocalIP+"\r\n")
		if got := sim.Accounting().ElapsedSeconds; !approx(got, 5+1) {
			t.Errorf("bearer up at %v s, want 6 (attach, then PDP activation)", got)
		}
	})
	t.Run("radio off and on loses the preparation", func(t *testing.T) {
		_, h := start(t)
		prepare(h)
		h.cmd("AT+CFUN=0", "\r\nOK\r\n\r\n+PDP: DEACT\r\n\r\n+CPIN: NOT READY\r\n")
		h.cmd("AT+CFUN=1", "\r\nOK\r\n\r\n+CPIN: READY\r\n")
		h.cmd("AT+CEREG?", "\r\n+CEREG: 0,1\r\n\r\nOK\r\n")
		h.cmd("AT+CIICR", "\r\nERROR\r\n")
		h.cmd("AT+CIPSTATUS", "\r\nOK\r\n\r\nSTATE: PDP DEACT\r\n")
		prepare(h)
		h.cmd("AT+CIICR", "\r\nOK\r\n")
	})
	t.Run("a reboot loses the preparation", func(t *testing.T) {
		_, h := start(t)
		prepare(h)
		h.send("AT+CFUN=1,1\r")
		h.expectContains("SMS Ready\r\n")
		h.cmd("ATE0", "ATE0\r\r\nOK\r\n")
		h.cmd("AT+CIPSTATUS", "\r\nOK\r\n\r\nSTATE: IP INITIAL\r\n")
		h.cmd("AT+CEREG?", "\r\n+CEREG: 0,1\r\n\r\nOK\r\n")
		h.cmd("AT+CIICR", "\r\nERROR\r\n")
	})
}
