package modem

import (
	"bytes"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

// collect runs the framer over input fed in pieces of the given size
// (0: all at once) and returns what it emitted.
func collect(input []byte, piece int) ([]event, *framer) {
	var got []event
	f := newFramer(func(ev event) { got = append(got, ev) })
	if piece <= 0 {
		piece = len(input) + 1
	}
	for len(input) > 0 {
		n := min(piece, len(input))
		f.feed(input[:n])
		input = input[n:]
	}
	return got, f
}

func line(s string) event { return event{kind: evLine, line: s} }
func data(s string) event { return event{kind: evData, data: []byte(s)} }
func prompt() event       { return event{kind: evPrompt} }
func describe(evs []event) string {
	var parts []string
	for _, ev := range evs {
		switch ev.kind {
		case evLine:
			parts = append(parts, fmt.Sprintf("line(%q)", ev.line))
		case evPrompt:
			parts = append(parts, "prompt")
		case evData:
			parts = append(parts, fmt.Sprintf("data(%q)", ev.data))
		}
	}
	return strings.Join(parts, " ")
}

// Ensure the framer splits every documented answer shape, however the
// bytes are cut into reads.
func TestFramer(t *testing.T) {
	tests := []struct {
		name  string
		input string
		want  []event
	}{
		{"csq echo off", "\r\n+CSQ: 20,99\r\n\r\nOK\r\n", []event{line("+CSQ: 20,99"), line("OK")}},
		{"echo on ends in CR CR LF", "AT+CSQ\r\r\n+CSQ: 20,99\r\n\r\nOK\r\n",
			[]event{line("AT+CSQ"), line("+CSQ: 20,99"), line("OK")}},
		{"prompt has no line ending", "\r\n> ", []event{prompt()}},
		{"prompt then accept", "\r\n> \r\nDATA ACCEPT:5\r\n", []event{prompt(), line("DATA ACCEPT:5")}},
		{"line starting with > is not a prompt", "\r\n>x\r\n", []event{line(">x")}},
		{"payload with CR LF OK and prompt inside",
			"\r\n+CIPRXGET: 2,11,0\r\n\r\nOK\r\n> \x1a\x1b\x00\r\nOK\r\n",
			[]event{line("+CIPRXGET: 2,11,0"), data("\r\nOK\r\n> \x1a\x1b\x00"), line("OK")}},
		{"payload after repeated notifications",
			"\r\n+CIPRXGET: 1\r\n\r\n+CIPRXGET: 1\r\n\r\n+CIPRXGET: 2,4,4\r\nabcd\r\nOK\r\n",
			[]event{line("+CIPRXGET: 1"), line("+CIPRXGET: 1"), line("+CIPRXGET: 2,4,4"), data("abcd"), line("OK")}},
		{"payload header with spaces", "\r\n+CIPRXGET: 2, 3, 0\r\n\n\n\rOK\r\n",
			[]event{line("+CIPRXGET: 2, 3, 0"), data("\n\n\r"), line("OK")}},
		{"payload header ended by LF only", "+CIPRXGET: 2,2,0\n\r\nOK\r\n",
			[]event{line("+CIPRXGET: 2,2,0"), data("\r\n"), line("OK")}},
		{"empty payload", "\r\n+CIPRXGET: 2,0,0\r\n\r\nOK\r\n", []event{line("+CIPRXGET: 2,0,0"), line("OK")}},
		{"oversized payload length is only a line", "\r\n+CIPRXGET: 2,99999,0\r\nOK\r\n",
			[]event{line("+CIPRXGET: 2,99999,0"), line("OK")}},
		{"mode 4 answer carries no payload", "\r\n+CIPRXGET: 4,10\r\n\r\nOK\r\n",
			[]event{line("+CIPRXGET: 4,10"), line("OK")}},
		{"multi-connection header carries no single payload", "\r\n+CIPRXGET: 2,0,3,0\r\nabc\r\n",
			[]event{line("+CIPRXGET: 2,0,3,0"), line("abc")}},
		{"ok before state", "\r\nOK\r\n\r\nSTATE: CONNECT OK\r\n", []event{line("OK"), line("STATE: CONNECT OK")}},
		{"bare ip without ok", "\r\n10.78.245.128\r\n", []event{line("10.78.245.128")}},
		{"garbage bytes make one line", "\x00\xff\xfeAT\r\nOK\r\n", []event{line("\x00\xff\xfeAT"), line("OK")}},
	}
	for _, tt := range tests {
		for _, piece := range []int{0, 1, 2, 7} {
			t.Run(fmt.Sprintf("%s/piece=%d", tt.name, piece), func(t *testing.T) {
				got, _ := collect([]byte(tt.input), piece)
				if !reflect.DeepEqual(normalise(got), normalise(tt.want)) {
					t.Errorf("events:\n got  %s\n want %s", describe(got), describe(tt.want))
				}
			})
		}
	}
}

// normalise makes empty and nil payloads compare equal.
func normalise(evs []event) []event {
	out := make([]event, len(evs))
	for i, ev := range evs {
		if len(ev.data) == 0 {
			ev.data = nil
		}
		out[i] = ev
	}
	return out
}

// Ensure a run without line endings longer than maxLine is dropped and the
// framer recovers at the next terminator.
func TestFramerOverlongLine(t *testing.T) {
	input := append(bytes.Repeat([]byte("x"), 3*maxLine), "\r\nOK\r\n"...)
	got, f := collect(input, 1000)
	if want := []event{line("OK")}; !reflect.DeepEqual(got, want) {
		t.Errorf("events = %s, want %s", describe(got), describe(want))
	}
	if f.garbage != int64(3*maxLine) {
		t.Errorf("garbage = %d, want %d", f.garbage, 3*maxLine)
	}
}

// Ensure an abandoned payload does not swallow the next command's answer.
func TestFramerAbortPayload(t *testing.T) {
	var got []event
	f := newFramer(func(ev event) { got = append(got, ev) })
	f.feed([]byte("\r\n+CIPRXGET: 2,100,0\r\nonly part"))
	f.abortPayload()
	f.feed([]byte("\r\nOK\r\n"))
	want := []event{line("+CIPRXGET: 2,100,0"), line("OK")}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("events = %s, want %s", describe(got), describe(want))
	}
}
