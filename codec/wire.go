package codec

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// truncatedError carries both ErrTruncated and io.ErrUnexpectedEOF so
// callers that only know the io convention still recognise a cut stream.
type truncatedError struct{ what string }

func (e *truncatedError) Error() string { return "truncated packet: input ended inside " + e.what }

func (e *truncatedError) Unwrap() []error { return []error{ErrTruncated, io.ErrUnexpectedEOF} }

func errTruncated(what string) error { return &truncatedError{what: what} }

// malformedf returns an error wrapping ErrMalformedPacket with the context
// of the rule the bytes break.
func malformedf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrMalformedPacket}, args...)...)
}

func appendUint16(dst []byte, v uint16) []byte { return append(dst, byte(v>>8), byte(v)) }

func appendUint32(dst []byte, v uint32) []byte {
	return append(dst, byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
}

// appendString writes a two-byte length prefix and s; callers validated the
// length with checkString or checkBinary.
func appendString(dst []byte, s string) []byte {
	dst = appendUint16(dst, uint16(len(s)))
	return append(dst, s...)
}

func appendBinary(dst []byte, b []byte) []byte {
	dst = appendUint16(dst, uint16(len(b)))
	return append(dst, b...)
}

// checkString validates a UTF-8 string field [MQTT-1.5.4-1] [MQTT-1.5.4-2]
// and returns its encoded size.
func checkString(field, s string) (int, error) {
	if len(s) > 0xffff {
		return 0, fmt.Errorf("%s of %d bytes: %w", field, len(s), ErrStringTooLong)
	}
	if !utf8.ValidString(s) || strings.IndexByte(s, 0) >= 0 {
		return 0, fmt.Errorf("%s: %w", field, ErrInvalidString)
	}
	return 2 + len(s), nil
}

// checkBinary returns the encoded size of a binary data field.
func checkBinary(field string, b []byte) (int, error) {
	if len(b) > 0xffff {
		return 0, fmt.Errorf("%s of %d bytes: %w", field, len(b), ErrStringTooLong)
	}
	return 2 + len(b), nil
}

func checkQoS(field string, q byte) error {
	if q > 2 {
		return fmt.Errorf("%s %d: %w", field, q, ErrInvalidQoS)
	}
	return nil
}

// parser reads fields from one packet body. The first failure sticks, so a
// decoder reads all fields and checks err once; every read after a failure
// returns zero values.
type parser struct {
	b   []byte
	off int
	err error
}

func (p *parser) fail(err error) {
	if p.err == nil {
		p.err = err
	}
}

func (p *parser) remaining() int { return len(p.b) - p.off }

func (p *parser) take(n int, what string) []byte {
	if p.err != nil {
		return nil
	}
	if n > len(p.b)-p.off {
		p.fail(malformedf("%s runs past the end of the packet", what))
		return nil
	}
	s := p.b[p.off : p.off+n : p.off+n]
	p.off += n
	return s
}

func (p *parser) u8(what string) byte {
	b := p.take(1, what)
	if b == nil {
		return 0
	}
	return b[0]
}

func (p *parser) u16(what string) uint16 {
	b := p.take(2, what)
	if b == nil {
		return 0
	}
	return uint16(b[0])<<8 | uint16(b[1])
}

func (p *parser) u32(what string) uint32 {
	b := p.take(4, what)
	if b == nil {
		return 0
	}
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

func (p *parser) varint(what string) int {
	if p.err != nil {
		return 0
	}
	v, n, err := DecodeVarint(p.b[p.off:])
	if err != nil {
		if errors.Is(err, ErrMalformedLength) {
			p.fail(fmt.Errorf("%w: %s: %w", ErrMalformedPacket, what, ErrMalformedLength))
		} else {
			// Inside a packet whose body was read in full, running out of
			// bytes means the packet is malformed, not that the stream was cut.
			p.fail(malformedf("%s runs past the end of the packet", what))
		}
		return 0
	}
	p.off += n
	return v
}

func (p *parser) binary(what string) []byte {
	n := int(p.u16(what))
	return p.take(n, what)
}

// utf8 reads a UTF-8 string field and checks it is well-formed and free of
// U+0000, without converting it to a string.
func (p *parser) utf8(what string) []byte {
	b := p.binary(what)
	if p.err == nil && (!utf8.Valid(b) || indexZero(b) >= 0) {
		p.fail(fmt.Errorf("%w: %s: %w", ErrMalformedPacket, what, ErrInvalidString))
		return nil
	}
	return b
}

func indexZero(b []byte) int {
	for i, c := range b {
		if c == 0 {
			return i
		}
	}
	return -1
}

// done fails when bytes remain that no field accounts for.
func (p *parser) done(what string) {
	if p.err == nil && p.off != len(p.b) {
		p.fail(malformedf("%d unexpected bytes after %s", len(p.b)-p.off, what))
	}
}
