package modemsim

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestRxURCPolicies(t *testing.T) {
	tests := []struct {
		policy RxURCPolicy
		// what follows the second burst of data, sent into a non-empty buffer
		second string
		first  string
	}{
		{RxURCOnce, "", "\r\n+CIPRXGET: 1\r\n"},
		{RxURCEvery, "\r\n+CIPRXGET: 1\r\n", "\r\n+CIPRXGET: 1\r\n"},
		{RxURCNever, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.policy.String(), func(t *testing.T) {
			cfg := Fast()
			cfg.Variants.RxURC = tt.policy
			_, h := startPipe(t, cfg)
			b := newBroker(t)
			connectQuick(t, h, b, true)
			b.send("one")
			h.expect(tt.first)
			// The first burst is buffered before the second goes out.
			h.pollRx(3)
			b.send("two")
			h.expect(tt.second)
			if polls := h.pollRx(6); strings.Contains(polls, "+CIPRXGET: 1") {
				t.Errorf("unexpected URC while polling: %q", polls)
			}
			h.cmd("AT+CIPRXGET=2,10", "\r\n+CIPRXGET: 2,6,0\r\nonetwo\r\nOK\r\n")
		})
	}
}

// Ensure the receive buffer holds RxBuffer bytes and refills from what
// arrived beyond it.
func TestRxBufferLimit(t *testing.T) {
	cfg := Fast()
	cfg.RxBuffer = 10
	_, h := startPipe(t, cfg)
	b := newBroker(t)
	connectQuick(t, h, b, true)
	b.send("0123456789abcdefghijKLMNO")
	h.expect("\r\n+CIPRXGET: 1\r\n")
	h.pollRx(10)
	h.cmd("AT+CIPRXGET=2,8", "\r\n+CIPRXGET: 2,8,10\r\n01234567\r\nOK\r\n")
	h.cmd("AT+CIPRXGET=2,20", "\r\n+CIPRXGET: 2,10,7\r\n89abcdefgh\r\nOK\r\n")
	h.cmd("AT+CIPRXGET=2,20", "\r\n+CIPRXGET: 2,7,0\r\nijKLMNO\r\nOK\r\n")
}

// pollRx polls AT+CIPRXGET=4, as a host must without URCs, until want
// bytes are buffered.
func (h *host) pollRx(want int) (transcript string) {
	h.t.Helper()
	deadline := time.Now().Add(testTimeout)
	for {
		h.send("AT+CIPRXGET=4\r")
		answer := h.expectContains("\r\nOK\r\n")
		transcript += answer
		if strings.HasSuffix(answer, fmt.Sprintf("\r\n+CIPRXGET: 4,%d\r\n\r\nOK\r\n", want)) {
			return transcript
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("last poll answered %q, want %d bytes buffered", answer, want)
		}
		time.Sleep(time.Millisecond) // the host's poll interval: polling is the behaviour under test
	}
}

// Ensure small broker writes that arrive while a segment is still on its
// way share its header, so air figures do not depend on local TCP timing.
func TestDownlinkCoalescing(t *testing.T) {
	cfg := linkConfig()
	cfg.VirtualIdle = 500 * time.Millisecond
	sim, h := startPipe(t, cfg)
	b := newBroker(t)
	connectQuick(t, h, b, true)
	// The answers to a send come back one round trip after it.
	sendChunk(t, h, "q")
	h.expect("\r\nDATA ACCEPT:1\r\n")
	b.expect("q")
	before := sim.Accounting().AirBytesDown
	for _, s := range []string{"a", "b", "c"} {
		b.send(s)
	}
	h.expect("\r\n+CIPRXGET: 1\r\n")
	h.cmd("AT+CIPRXGET=2,10", "\r\n+CIPRXGET: 2,3,0\r\nabc\r\nOK\r\n")
	if got := sim.Accounting().AirBytesDown - before; got != 3+segmentHeader {
		t.Errorf("AirBytesDown grew by %d, want one segment of %d", got, 3+segmentHeader)
	}
}
