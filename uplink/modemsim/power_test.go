package modemsim

import (
	"testing"
	"time"
)

const banner = "\r\nRDY\r\n\r\n+CFUN: 1\r\n\r\n+CPIN: READY\r\n\r\nSMS Ready\r\n"

func TestPowerOnBoots(t *testing.T) {
	cfg := Fast()
	cfg.StartPoweredOff = true
	sim, h := startPipe(t, cfg)
	if sim.PoweredOn() || sim.RadioOn() {
		t.Fatal("module powered with StartPoweredOff")
	}
	h.send("AT\r")
	h.quiet()
	sim.PowerOn()
	h.expect(banner)
	if !sim.PoweredOn() || !sim.RadioOn() {
		t.Errorf("PoweredOn()=%v RadioOn()=%v after boot, want both", sim.PoweredOn(), sim.RadioOn())
	}
	sim.PowerOn() // a switch: no second boot
	h.cmd("AT", "AT\r\r\nOK\r\n")
	if got := sim.Accounting(); got.UARTBytesIn != 3 {
		t.Errorf("UARTBytesIn=%d, want 3: bytes sent while off are not received", got.UARTBytesIn)
	}
}

func TestPowerBootDelay(t *testing.T) {
	cfg := Fast()
	cfg.StartPoweredOff = true
	cfg.BootDelay = 50 * time.Millisecond
	sim, h := startPipe(t, cfg)
	start := time.Now()
	sim.PowerOn()
	if !sim.PoweredOn() || sim.RadioOn() {
		t.Errorf("while booting PoweredOn()=%v RadioOn()=%v, want true, false", sim.PoweredOn(), sim.RadioOn())
	}
	h.send("AT\r") // ignored while booting
	h.expect(banner)
	if d := time.Since(start); d < cfg.BootDelay {
		t.Errorf("banner after %v, want at least %v", d, cfg.BootDelay)
	}
	h.cmd("AT", "AT\r\r\nOK\r\n")
}

func TestPowerNoBanner(t *testing.T) {
	cfg := Fast()
	cfg.StartPoweredOff = true
	cfg.NoBootBanner = true
	sim, h := startPipe(t, cfg)
	sim.PowerOn()
	h.cmd("AT", "AT\r\r\nOK\r\n")
}

func TestPowerCommands(t *testing.T) {
	tests := []struct {
		name    string
		line    string
		answer  string
		powered bool
	}{
		{"CPOWD1", "AT+CPOWD=1", "\r\nNORMAL POWER DOWN\r\n", false},
		{"CPOWD0", "AT+CPOWD=0", "", false},
		{"Reset", "AT+CFUN=1,1", "\r\nOK\r\n" + banner, true},
		{"CFUN6", "AT+CFUN=6", "\r\nOK\r\n" + banner, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sim, h := startPipe(t, Fast())
			h.cmd("ATE0", "ATE0\r\r\nOK\r\n")
			h.cmd(tt.line, tt.answer)
			h.send("AT\r")
			if !tt.powered {
				h.quiet()
				if sim.PoweredOn() || sim.RadioOn() {
					t.Errorf("PoweredOn()=%v RadioOn()=%v, want off", sim.PoweredOn(), sim.RadioOn())
				}
				return
			}
			// A reset turns echo back on.
			h.expect("AT\r\r\nOK\r\n")
			if got := sim.Accounting().Reboots; got != 1 {
				t.Errorf("Reboots=%d, want 1", got)
			}
		})
	}
}

// Ensure power loss drops the TCP connection without a word.
func TestPowerOffDropsLink(t *testing.T) {
	sim, h := startPipe(t, Fast())
	b := newBroker(t)
	connectQuick(t, h, b, true)
	sim.PowerOff()
	b.expectEOF()
	h.quiet()
	sim.PowerOn()
	h.expect(banner)
	h.cmd("AT+CIPSTATUS", "AT+CIPSTATUS\r\r\nOK\r\n\r\nSTATE: IP INITIAL\r\n")
}

// Ensure AUTO_SAVE settings survive a reboot and volatile ones do not.
func TestPowerSavedSettings(t *testing.T) {
	sim, h := startPipe(t, Fast())
	h.cmd("ATE0", "ATE0\r\r\nOK\r\n")
	h.cmd("AT+CMNB=2;+IPR=57600;+CIPQSEND=1", "\r\nOK\r\n")
	sim.PowerOff()
	sim.PowerOn()
	h.expect(banner)
	h.cmd("AT+CMNB?;+IPR?;+CIPQSEND?", "AT+CMNB?;+IPR?;+CIPQSEND?\r\r\n+CMNB: 2\r\n\r\n+IPR: 57600\r\n\r\n+CIPQSEND: 0\r\n\r\nOK\r\n")
}

// Ensure an autobauding module drops input until the first AT line and
// prints no banner.
func TestPowerAutobaud(t *testing.T) {
	cfg := Fast()
	cfg.Autobaud = true
	cfg.StartPoweredOff = true
	sim, h := startPipe(t, cfg)
	sim.PowerOn()
	h.send("\x00\xffAT\r")
	h.quiet()
	h.cmd("AT", "AT\r\r\nOK\r\n")
	h.cmd("AT+IPR?", "AT+IPR?\r\r\n+IPR: 0\r\n\r\nOK\r\n")
	// A reset hunts for the rate again.
	h.cmd("AT+CFUN=1,1", "AT+CFUN=1,1\r\r\nOK\r\n")
	h.quiet() // the reset's boot: no banner in autobaud mode
	h.send("at\r")
	h.quiet()
	h.cmd("AT", "AT\r\r\nOK\r\n")
}
