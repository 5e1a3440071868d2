//go:build linux

package modemsim

import (
	"log/slog"
	"strings"
	"testing"
	"time"

	"go.bug.st/serial"

	"github.com/nbiot-uploader/uploader/uplink/testkit"
)

// openPort opens the simulator's terminal the way the uploader does.
func openPort(t *testing.T, sim *Sim) (serial.Port, *host) {
	t.Helper()
	port, err := serial.Open(sim.Path(), &serial.Mode{BaudRate: 115200})
	if err != nil {
		t.Fatalf("serial.Open(%s): %v", sim.Path(), err)
	}
	if err := port.SetReadTimeout(50 * time.Millisecond); err != nil {
		t.Fatalf("SetReadTimeout: %v", err)
	}
	h := newHost(t, port)
	h.sim = sim
	return port, h
}

func startPTY(t *testing.T, cfg Config) *Sim {
	t.Helper()
	sim, err := Start(cfg)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		if err := sim.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return sim
}

// Ensure the module answers through a real pseudo-terminal opened with
// go.bug.st/serial, and survives the host closing and reopening the port.
func TestPTYSerialPort(t *testing.T) {
	sim := startPTY(t, Fast())
	if sim.Path() == "" {
		t.Fatal("Path() is empty")
	}
	port, h := openPort(t, sim)
	h.cmd("AT", "AT\r\r\nOK\r\n")
	h.cmd("AT+CSQ", "AT+CSQ\r\r\n+CSQ: 20,99\r\n\r\nOK\r\n")
	h.cmd("ATE0", "ATE0\r\r\nOK\r\n")
	if err := port.Close(); err != nil {
		t.Fatalf("close port: %v", err)
	}

	// Echo stays off: the module kept running while the port was closed.
	port, h = openPort(t, sim)
	defer port.Close()
	h.cmd("AT+CGMR", "\r\nRevision:1351B05SIM7000E\r\n\r\nOK\r\n")
}

// Ensure a whole uplink session runs through the terminal to a TCP peer.
func TestPTYSession(t *testing.T) {
	sim := startPTY(t, Fast())
	port, h := openPort(t, sim)
	defer port.Close()
	b := newBroker(t)

	h.cmd("ATE0", "ATE0\r\r\nOK\r\n")
	h.cmd("AT+CIPSHUT", "\r\nSHUT OK\r\n")
	h.cmd("AT+CIPMUX=0;+CIPRXGET=1;+CIPQSEND=1", "\r\nOK\r\n")
	h.cmd(`AT+CSTT="nbiot"`, "\r\nOK\r\n")
	h.cmd("AT+CIICR", "\r\nOK\r\n")
	h.cmd("AT+CIFSR", "\r\n10.78.245.128\r\n")
	h.cmd(b.cipstart(), "\r\nOK\r\n")
	b.accept()
	h.expect("\r\nCONNECT OK\r\n")
	payload := make([]byte, 1460)
	for i := range payload {
		payload[i] = byte(i)
	}
	h.cmd("AT+CIPSEND=1460", "\r\n> ")
	h.send(string(payload))
	h.expect("\r\nDATA ACCEPT:1460\r\n")
	b.expect(string(payload))
	b.send("\x20\x02\x00\x00")
	h.expect("\r\n+CIPRXGET: 1\r\n")
	h.cmd("AT+CIPRXGET=2,1460", "\r\n+CIPRXGET: 2,4,0\r\n\x20\x02\x00\x00\r\nOK\r\n")
	h.cmd("AT+CIPCLOSE=1", "\r\nCLOSE OK\r\n")
	b.expectEOF()
	h.cmd("AT+CPOWD=1", "\r\nNORMAL POWER DOWN\r\n")
	if sim.PoweredOn() {
		t.Error("PoweredOn() = true after AT+CPOWD=1")
	}
	got := sim.Accounting()
	if got.CIPSENDCalls != 1 || got.LargestChunk != 1460 || got.TCPConnections != 1 {
		t.Errorf("Accounting() = %+v, want 1 CIPSEND of 1460 bytes on 1 connection", got)
	}
	if string(got.MQTTStream) != string(payload) {
		t.Errorf("MQTTStream has %d bytes, want the %d sent", len(got.MQTTStream), len(payload))
	}
}

// Ensure Close is idempotent and unblocks everything.
func TestPTYCloseTwice(t *testing.T) {
	sim, err := Start(Fast())
	if err != nil {
		t.Fatal(err)
	}
	if err := sim.Close(); err != nil {
		t.Fatalf("first Close: %v", err)
	}
	if err := sim.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	select {
	case <-sim.Done():
	default:
		t.Error("Done() not closed after Close")
	}
}

// Ensure a host that stops reading cannot wedge the module: its output is
// dropped after a while and power switches still work.
func TestPTYHostNotReading(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for the write stall")
	}
	cfg := Fast()
	var log testkit.SyncBuffer
	cfg.Logger = slog.New(slog.NewTextHandler(&log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	sim := startPTY(t, cfg)
	port, err := serial.Open(sim.Path(), &serial.Mode{BaudRate: 115200})
	if err != nil {
		t.Fatal(err)
	}
	defer port.Close()
	// Each line asks for about 6 KB; 30 of them overflow the terminal.
	line := []byte("AT" + strings.Repeat("+GSV;", 100) + "+GSV\r")
	for range 30 {
		if _, err := port.Write(line); err != nil {
			t.Fatal(err)
		}
	}
	// The module fills the terminal, blocks on it for writeStall, then
	// drops its output and says so.
	if !log.WaitFor("host not reading; dropping output", writeStall+testTimeout) {
		t.Fatalf("the module never gave up on a host that does not read; %d bytes of log", log.Len())
	}
	done := make(chan struct{})
	go func() {
		sim.PowerOff()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * writeStall):
		t.Fatal("PowerOff blocked behind a host that does not read")
	}
	if sim.PoweredOn() {
		t.Error("PoweredOn() = true after PowerOff")
	}
}
