package modemsim

import (
	"encoding/json"
	"sync"
	"testing"
)

// Ensure every counter of one short session matches the model exactly.
func TestAccountingSession(t *testing.T) {
	sim, h := startPipe(t, Fast())
	b := newBroker(t)
	connectQuick(t, h, b, true) // ATE0, CIPRXGET/CIPQSEND, CIPSTART
	sendChunk(t, h, "0123456789")
	h.expect("\r\nDATA ACCEPT:10\r\n")
	b.expect("0123456789")
	b.send("ack!")
	h.expect("\r\n+CIPRXGET: 1\r\n")
	h.cmd("AT+CIPRXGET=2,100", "\r\n+CIPRXGET: 2,4,0\r\nack!\r\nOK\r\n")
	h.cmd("AT+CIPCLOSE=1", "\r\nCLOSE OK\r\n")
	b.expectEOF()

	got := sim.Accounting()
	want := Accounting{
		ATCommands:     6,
		CIPSENDCalls:   1,
		LargestChunk:   10,
		TCPConnections: 1,
		RadioOnPeriods: 1,
		MQTTBytesUp:    10,
		MQTTBytesDown:  4,
		// Handshake 100 + data 10+40 + ACK of the broker's segment 40 + teardown 80.
		AirBytesUp: 100 + 50 + 40 + 80,
		// Handshake 60 + ACK of our segment 40 + data 4+40 + teardown 80.
		AirBytesDown: 60 + 40 + 44 + 80,
	}
	if got.ATCommands != want.ATCommands || got.CIPSENDCalls != want.CIPSENDCalls ||
		got.LargestChunk != want.LargestChunk || got.TCPConnections != want.TCPConnections ||
		got.RadioOnPeriods != want.RadioOnPeriods || got.MQTTBytesUp != want.MQTTBytesUp ||
		got.MQTTBytesDown != want.MQTTBytesDown || got.AirBytesUp != want.AirBytesUp ||
		got.AirBytesDown != want.AirBytesDown {
		t.Errorf("Accounting()=%+v\nwant counters %+v", got, want)
	}
	if string(got.MQTTStream) != "0123456789" || len(got.MQTTStreams) != 1 {
		t.Errorf("MQTTStream=%q MQTTStreams=%q", got.MQTTStream, got.MQTTStreams)
	}
	// Host bytes: every command line and the payload; module bytes: echo of
	// ATE0 and every answer.
	if got.UARTBytesIn == 0 || got.UARTBytesOut == 0 {
		t.Errorf("UART bytes in/out = %d/%d, want counted", got.UARTBytesIn, got.UARTBytesOut)
	}
}

func TestAccountingUARTExact(t *testing.T) {
	sim, h := startPipe(t, Fast())
	h.cmd("ATE0", "ATE0\r\r\nOK\r\n")
	h.send("AT+CSQ\r\n")
	h.expect("\r\n+CSQ: 20,99\r\n\r\nOK\r\n")
	got := sim.Accounting()
	if got.UARTBytesIn != 5+8 || got.UARTBytesOut != 11+21 {
		t.Errorf("UART bytes in/out = %d/%d, want 13/32", got.UARTBytesIn, got.UARTBytesOut)
	}
}

func TestAccountingJSON(t *testing.T) {
	sim, h := startPipe(t, Fast())
	h.cmd("AT", "AT\r\r\nOK\r\n")
	raw, err := json.Marshal(sim.Accounting())
	if err != nil {
		t.Fatal(err)
	}
	var fields map[string]any
	if err := json.Unmarshal(raw, &fields); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"radio_on_seconds", "attach_seconds", "uart_bytes_in", "uart_bytes_out",
		"air_bytes_up", "air_bytes_down", "at_commands", "cipsend_calls", "largest_chunk",
		"tcp_connections", "mqtt_bytes_up", "mqtt_bytes_down", "elapsed_seconds"} {
		if _, ok := fields[key]; !ok {
			t.Errorf("JSON %s lacks %q", raw, key)
		}
	}
	if _, ok := fields["MQTTStream"]; ok {
		t.Errorf("JSON %s carries the MQTT stream", raw)
	}
	if fields["at_commands"] != 1.0 {
		t.Errorf("at_commands = %v, want 1", fields["at_commands"])
	}
}

func TestAccountingReset(t *testing.T) {
	cfg := virtualConfig()
	cfg.Turnaround = 100e6 // 100 ms
	sim, h := startPipe(t, cfg)
	h.cmd("AT", "AT\r\r\nOK\r\n")
	sim.ResetAccounting()
	if got := sim.Accounting(); got.ATCommands != 0 || got.UARTBytesIn != 0 || got.RadioOnSeconds != 0 {
		t.Fatalf("after reset Accounting()=%+v, want zero", got)
	}
	h.cmd("AT", "AT\r\r\nOK\r\n")
	if got := sim.Accounting(); got.ATCommands != 1 || !approx(got.RadioOnSeconds, 0.1) || !approx(got.ElapsedSeconds, 0.1) {
		t.Errorf("Accounting()=%+v, want 1 command and 0.1 s", got)
	}
}

// Ensure snapshots are safe while the module works (run with -race).
func TestAccountingConcurrent(t *testing.T) {
	sim, h := startPipe(t, Fast())
	b := newBroker(t)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
				a := sim.Accounting()
				_ = a.MQTTStream
				_ = sim.RadioOn()
			}
		}
	}()
	connectQuick(t, h, b, true)
	for range 20 {
		sendChunk(t, h, "payload")
		h.expect("\r\nDATA ACCEPT:7\r\n")
	}
	close(stop)
	wg.Wait()
	if got := sim.Accounting().MQTTBytesUp; got != 140 {
		t.Errorf("MQTTBytesUp=%d, want 140", got)
	}
}

// Ensure Close ends the radio period and freezes the figures.
func TestAccountingAfterClose(t *testing.T) {
	cfg := virtualConfig()
	cfg.Turnaround = 100e6
	sim, h := startPipe(t, cfg)
	h.cmd("AT", "AT\r\r\nOK\r\n")
	if err := sim.Close(); err != nil {
		t.Fatal(err)
	}
	got := sim.Accounting()
	if !approx(got.RadioOnSeconds, 0.1) || !approx(got.PoweredSeconds, 0.1) {
		t.Errorf("after Close RadioOnSeconds=%v PoweredSeconds=%v, want 0.1", got.RadioOnSeconds, got.PoweredSeconds)
	}
}
