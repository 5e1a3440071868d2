package modem

import (
	"strconv"
	"strings"
)

// eventKind tells what the framer recognised in the module's output.
type eventKind uint8

const (
	evLine   eventKind = iota + 1 // one CR/LF-terminated line, terminator stripped
	evPrompt                      // the "> " CIPSEND prompt, which has no line ending
	evData                        // the raw payload announced by "+CIPRXGET: 2,<got>,<left>"
)

// event is one unit of module output.
type event struct {
	kind eventKind
	line string
	data []byte
}

// framer splits the module's byte stream into events. It is a byte-level
// state machine because two things in the stream are not lines: the send
// prompt ("\r\n> " with no terminator) and a receive payload, exactly <got>
// raw bytes that may contain CR, LF, "OK" or "> ". It never blocks and
// never allocates more than maxLine plus one payload.
type framer struct {
	emit func(event)

	line     []byte
	overlong bool // discarding a run longer than maxLine until the next terminator

	payloadLeft int    // raw payload bytes still expected
	payload     []byte // payload collected so far
	skipLF      bool   // the payload header ended with CR: a following LF belongs to it

	garbage int64 // bytes discarded as overlong lines
}

func newFramer(emit func(event)) *framer {
	return &framer{emit: emit, line: make([]byte, 0, 128)}
}

// abortPayload drops a payload still being collected: its command gave up
// waiting, so whatever arrives next is the answer to a new command.
func (f *framer) abortPayload() {
	if f.payloadLeft > 0 || f.skipLF {
		f.garbage += int64(len(f.payload))
		f.payloadLeft, f.payload, f.skipLF = 0, nil, false
	}
}

func (f *framer) feed(p []byte) {
	for len(p) > 0 {
		if f.skipLF {
			f.skipLF = false
			if p[0] == '\n' {
				p = p[1:]
				continue
			}
		}
		if f.payloadLeft > 0 {
			n := min(f.payloadLeft, len(p))
			f.payload = append(f.payload, p[:n]...)
			f.payloadLeft -= n
			p = p[n:]
			if f.payloadLeft == 0 {
				f.emit(event{kind: evData, data: f.payload})
				f.payload = nil
			}
			continue
		}
		b := p[0]
		p = p[1:]
		switch {
		case b == '\r' || b == '\n':
			f.endLine(b)
		case b == ' ' && len(f.line) == 1 && f.line[0] == '>' && !f.overlong:
			f.line = f.line[:0]
			f.emit(event{kind: evPrompt})
		case f.overlong:
			f.garbage++
		default:
			f.line = append(f.line, b)
			if len(f.line) > maxLine {
				f.garbage += int64(len(f.line))
				f.line = f.line[:0]
				f.overlong = true
			}
		}
	}
}

func (f *framer) endLine(terminator byte) {
	if f.overlong {
		f.overlong = false
		return
	}
	if len(f.line) == 0 {
		return
	}
	text := string(f.line)
	f.line = f.line[:0]
	f.emit(event{kind: evLine, line: text})
	if got, ok := payloadHeader(text); ok && got > 0 {
		f.payloadLeft = got
		f.payload = make([]byte, 0, got)
		f.skipLF = terminator == '\r'
	}
}

// payloadHeader recognises the single-connection answer to
// AT+CIPRXGET=2,<n>: "+CIPRXGET: 2,<got>,<left>", followed by exactly <got>
// raw bytes. A <got> beyond what can be requested is not trusted as a
// length: the line is left to the command, which reports a protocol error.
func payloadHeader(line string) (got int, ok bool) {
	rest, found := strings.CutPrefix(line, "+CIPRXGET:")
	if !found {
		return 0, false
	}
	fields := splitFields(rest)
	if len(fields) != 3 || fields[0] != "2" {
		return 0, false
	}
	got, err := strconv.Atoi(fields[1])
	if err != nil || got < 0 || got > maxReceiveChunk {
		return 0, false
	}
	if _, err := strconv.Atoi(fields[2]); err != nil {
		return 0, false
	}
	return got, true
}

// splitFields splits a comma-separated answer, trimming the optional
// spaces the module puts after ':' and ',' on some firmware.
func splitFields(s string) []string {
	fields := strings.Split(s, ",")
	for i := range fields {
		fields[i] = strings.TrimSpace(fields[i])
	}
	return fields
}
