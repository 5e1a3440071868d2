package codec

import "errors"

// These errors report a topic name or topic filter that breaks the rules of
// MQTT-4.7 and MQTT-1.5.4.
var (
	// ErrTopicEmpty is returned for a zero-length topic name or filter
	// [MQTT-4.7.3-1], except an MQTT 5 PUBLISH that carries a topic alias.
	ErrTopicEmpty = errors.New("topic is empty")
	// ErrTopicTooLong is returned for a topic longer than 65,535 bytes.
	ErrTopicTooLong = errors.New("topic longer than 65535 bytes")
	// ErrTopicInvalidUTF8 is returned for a topic that is not well-formed UTF-8 [MQTT-1.5.4-1].
	ErrTopicInvalidUTF8 = errors.New("topic is not well-formed UTF-8")
	// ErrTopicNullChar is returned for a topic containing U+0000 [MQTT-1.5.4-2].
	ErrTopicNullChar = errors.New("topic contains U+0000")
	// ErrTopicWildcard is returned for a '+' or '#' in a PUBLISH topic name [MQTT-3.3.2-2].
	ErrTopicWildcard = errors.New("wildcard in topic name")
	// ErrTopicFilterInvalid is returned for a topic filter whose wildcards
	// are misplaced [MQTT-4.7.1-1] [MQTT-4.7.1-2].
	ErrTopicFilterInvalid = errors.New("invalid wildcard in topic filter")
)

// These errors report fields outside what the protocol allows.
var (
	// ErrInvalidQoS is returned for a QoS outside 0-2 [MQTT-3.3.1-4].
	ErrInvalidQoS = errors.New("QoS outside 0-2")
	// ErrPacketIDZero is returned when a packet that needs a packet
	// identifier has 0 [MQTT-2.2.1-3].
	ErrPacketIDZero = errors.New("packet identifier is 0")
	// ErrPropertyNotAllowed is returned for a property that the packet type
	// may not carry, a property repeated where only one is allowed, or an
	// MQTT 5 field used with protocol level 3 or 4.
	ErrPropertyNotAllowed = errors.New("property not allowed")
	// ErrStringTooLong is returned for a UTF-8 string or binary field longer
	// than 65,535 bytes, which a two-byte length prefix cannot describe.
	ErrStringTooLong = errors.New("string longer than 65535 bytes")
	// ErrInvalidString is returned for a UTF-8 string field, other than a
	// topic, that is ill-formed or contains U+0000 [MQTT-1.5.4-1] [MQTT-1.5.4-2].
	ErrInvalidString = errors.New("string is not well-formed UTF-8 or contains U+0000")
	// ErrUnsupportedVersion is returned for a protocol level other than 3, 4 or 5.
	ErrUnsupportedVersion = errors.New("unsupported MQTT protocol version")
	// ErrPacketTooLarge is returned for a packet larger than the peer's
	// maximum packet size, or than the protocol's 268,435,455-byte remaining
	// length allows.
	ErrPacketTooLarge = errors.New("packet too large")
)

// These errors report bytes that do not form a valid packet.
var (
	// ErrMalformedLength is returned for a variable byte integer longer than
	// four bytes [MQTT-1.5.5].
	ErrMalformedLength = errors.New("malformed variable byte integer")
	// ErrTruncated is returned when the input ends inside a packet. Errors
	// wrapping it also satisfy errors.Is(err, io.ErrUnexpectedEOF).
	ErrTruncated = errors.New("truncated packet")
	// ErrMalformedPacket is returned for any other protocol violation in
	// the bytes, such as reserved flags that are set or a field that runs
	// past the end of the packet.
	ErrMalformedPacket = errors.New("malformed packet")
)

// ErrConnectionRefused is wrapped by every *ConnackError, so callers can
// test a refusal with errors.Is and read the code with errors.As.
var ErrConnectionRefused = errors.New("connection refused")
