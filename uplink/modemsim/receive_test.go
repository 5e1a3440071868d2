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

// Ensure RxURCRepeat announces each arrival and repeats the announcement
// while data waits unread, and stops once the host has read everything.
func TestRxURCRepeat(t *testing.T) {
	cfg := Fast()
	cfg.Variants.RxURC = RxURCRepeat
	cfg.Variants.RxURCRepeatEvery = 20 * time.Millisecond
	sim, h := startPipe(t, cfg)
	b := newBroker(t)
	connectQuick(t, h, b, true)
	b.send("one")
	h.expect("\r\n+CIPRXGET: 1\r\n")
	// Unread: the reminder comes again, and again.
	h.expect("\r\n+CIPRXGET: 1\r\n")
	h.expect("\r\n+CIPRXGET: 1\r\n")
	h.cmd("AT+CIPRXGET=2,10", "\r\n+CIPRXGET: 2,3,0\r\none\r\nOK\r\n")
	acc := sim.Accounting()
	if acc.RxURCs < 3 || acc.RxReads != 1 {
		t.Errorf("RxURCs %d, RxReads %d; want at least 3 and 1", acc.RxURCs, acc.RxReads)
	}
}

// Ensure the receive accounting counts polls, reads, empty reads and the
// UART bytes of those exchanges without their payload.
func TestRxAccounting(t *testing.T) {
	cfg := Fast()
	cfg.Variants.RxURC = RxURCNever
	sim, h := startPipe(t, cfg)
	b := newBroker(t)
	connectQuick(t, h, b, true)
	before := sim.Accounting()
	h.cmd("AT+CIPRXGET=2,10", "\r\n+CIPRXGET: 2,0,0\r\n\r\nOK\r\n")
	b.send("hello")
	h.pollRx(5)
	h.cmd("AT+CIPRXGET=2,10", "\r\n+CIPRXGET: 2,5,0\r\nhello\r\nOK\r\n")
	acc := sim.Accounting()
	if got := acc.RxReads - before.RxReads; got != 2 {
		t.Errorf("RxReads grew by %d, want 2", got)
	}
	if got := acc.RxEmptyReads - before.RxEmptyReads; got != 1 {
		t.Errorf("RxEmptyReads grew by %d, want 1", got)
	}
	polls := acc.RxPolls - before.RxPolls
	if polls < 1 {
		t.Fatalf("RxPolls grew by %d", polls)
	}
	// Echo is off after connectQuick: each =2 is 17 bytes out and its
	// answer 27 bytes framing; each =4 is 14 bytes out, 23 back.
	want := int64(2*17+2*(len("\r\n+CIPRXGET: 2,0,0\r\n")+len("\r\nOK\r\n"))) + int64(polls)*int64(14+len("\r\n+CIPRXGET: 4,0\r\n\r\nOK\r\n"))
	if got := acc.RxUARTBytes - before.RxUARTBytes; got != want {
		t.Errorf("RxUARTBytes grew by %d, want %d", got, want)
	}
}

// Ensure HostTime charges a host silence of VirtualIdle or more to the
// virtual clock and leaves a quick host's time alone.
func TestHostTime(t *testing.T) {
	for _, charged := range []bool{false, true} {
		t.Run(fmt.Sprintf("HostTime=%v", charged), func(t *testing.T) {
			cfg := Fast()
			cfg.VirtualClock = true
			cfg.HostTime = charged
			cfg.VirtualIdle = 5 * time.Millisecond
			sim, h := startPipe(t, cfg)
			h.cmd("ATE0", "ATE0\r\r\nOK\r\n")
			start := sim.Accounting().ElapsedSeconds
			time.Sleep(50 * time.Millisecond) // the host waits on purpose
			h.cmd("AT", "\r\nOK\r\n")
			got := sim.Accounting().ElapsedSeconds - start
			if charged && got < 0.05 {
				t.Errorf("a 50 ms wait of the host advanced the clock %.3f s", got)
			}
			if !charged && got != 0 {
				t.Errorf("without HostTime the clock moved %.3f s", got)
			}
		})
	}
}
