package codec

import "fmt"

// MaxRemainingLength is the largest remaining length a four-byte variable
// byte integer can carry.
const MaxRemainingLength = 268_435_455

// MaxPacketSize is the largest possible packet on the wire: one type byte,
// four length bytes and the maximum remaining length.
const MaxPacketSize = 1 + 4 + MaxRemainingLength

// varintSize is the number of bytes appendVarint writes for n.
func varintSize(n int) int {
	switch {
	case n < 1<<7:
		return 1
	case n < 1<<14:
		return 2
	case n < 1<<21:
		return 3
	}
	return 4
}

// appendVarint writes n as a variable byte integer [MQTT-1.5.5]. Callers
// have checked 0 <= n <= MaxRemainingLength.
func appendVarint(dst []byte, n int) []byte {
	for n >= 0x80 {
		dst = append(dst, byte(n)|0x80)
		n >>= 7
	}
	return append(dst, byte(n))
}

// AppendVarint appends n as an MQTT variable byte integer. It returns
// ErrMalformedLength when n is negative or above MaxRemainingLength.
func AppendVarint(dst []byte, n int) ([]byte, error) {
	if n < 0 || n > MaxRemainingLength {
		return dst, fmt.Errorf("encode variable byte integer %d: %w", n, ErrMalformedLength)
	}
	return appendVarint(dst, n), nil
}

// DecodeVarint decodes a variable byte integer at the start of b and
// returns its value and the number of bytes it used. Non-minimal encodings
// (such as 0x80 0x00 for 0) decode; a fifth byte is ErrMalformedLength, and
// input that ends while the continuation bit is set is ErrTruncated.
func DecodeVarint(b []byte) (value, n int, err error) {
	for i := 0; i < 4; i++ {
		if i >= len(b) {
			return 0, 0, errTruncated("variable byte integer")
		}
		value |= int(b[i]&0x7f) << (7 * i)
		if b[i]&0x80 == 0 {
			return value, i + 1, nil
		}
	}
	return 0, 0, fmt.Errorf("variable byte integer longer than 4 bytes: %w", ErrMalformedLength)
}

// packetSize is the total wire size of a packet with the given remaining
// length, or ErrPacketTooLarge when the length cannot be encoded.
func packetSize(t PacketType, remaining int) (int, error) {
	if remaining > MaxRemainingLength {
		return 0, fmt.Errorf("%s remaining length %d exceeds %d: %w", t, remaining, MaxRemainingLength, ErrPacketTooLarge)
	}
	return 1 + varintSize(remaining) + remaining, nil
}

// CheckSize returns ErrPacketTooLarge when max is non-zero and a packet of
// size bytes exceeds it. Use it with the Maximum Packet Size a peer
// announced (CONNACK for the client side) before sending [MQTT-3.1.2-24].
func CheckSize(size int, max uint32) error {
	if max != 0 && uint64(size) > uint64(max) {
		return fmt.Errorf("packet of %d bytes exceeds peer maximum %d: %w", size, max, ErrPacketTooLarge)
	}
	return nil
}
