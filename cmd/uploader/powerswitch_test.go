package main

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nbiot-uploader/uploader/uplink/modemsim"
)

// powerSwitch plays a board's PWRKEY/GPIO switch for a simulated module.
// The --power-on-cmd and --power-off-cmd it hands out are shell commands
// that pass "1" or "0" to the test through one FIFO and then wait for the
// test's answer on another; the test powers the simulator on or off in
// between. A command therefore returns only once the module is switched,
// as a GPIO write has taken effect when it returns, and nothing is timed.
type powerSwitch struct {
	on, off string // the commands

	mu    sync.Mutex
	flips []string // "1" and "0", in the order the commands ran
}

func newPowerSwitch(t *testing.T, sim *modemsim.Sim) *powerSwitch {
	t.Helper()
	dir := t.TempDir()
	req, ack := filepath.Join(dir, "switch"), filepath.Join(dir, "switched")
	for _, p := range []string{req, ack} {
		if err := syscall.Mkfifo(p, 0o600); err != nil {
			t.Fatalf("mkfifo %s: %v", p, err)
		}
	}
	ps := &powerSwitch{
		on:  "echo 1 > " + req + " && read -r done < " + ack,
		off: "echo 0 > " + req + " && read -r done < " + ack,
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			// Blocks until a command (or the cleanup) opens the FIFO to
			// write; EOF comes when it has written its value and closed it.
			f, err := os.Open(req)
			if err != nil {
				t.Errorf("power switch: %v", err)
				return
			}
			b, err := io.ReadAll(f)
			f.Close()
			v := strings.TrimSpace(string(b))
			if err != nil || v == "stop" {
				return
			}
			ps.mu.Lock()
			ps.flips = append(ps.flips, v)
			ps.mu.Unlock()
			switch v {
			case "1":
				sim.PowerOn()
			case "0":
				sim.PowerOff()
			default:
				t.Errorf("power switch: command wrote %q", v)
			}
			// Blocks until the command opens the FIFO to read its answer.
			a, err := os.OpenFile(ack, os.O_WRONLY, 0)
			if err != nil {
				t.Errorf("power switch: %v", err)
				return
			}
			_, _ = a.WriteString("done\n")
			a.Close()
		}
	}()
	t.Cleanup(func() {
		select {
		case <-done:
			return
		default:
		}
		// The loop waits for a writer on the request FIFO; this one tells
		// it to stop.
		go func() {
			if f, err := os.OpenFile(req, os.O_WRONLY, 0); err == nil {
				_, _ = f.WriteString("stop\n")
				f.Close()
			}
		}()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("power switch: still waiting 10 s after the test (a command died between its two FIFOs)")
		}
	})
	return ps
}

// Flips returns the values the commands wrote so far, oldest first.
func (ps *powerSwitch) Flips() []string {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	return append([]string(nil), ps.flips...)
}
