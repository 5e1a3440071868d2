// Package codec encodes and decodes MQTT control packets for protocol
// levels 3 (MQTT 3.1, protocol name "MQIsdp"), 4 (MQTT 3.1.1) and 5 (MQTT 5.0).
//
// The package owns the wire format only: the fixed header, the variable byte
// integer, UTF-8 string and binary fields, MQTT 5 properties, and the
// validation rules the specifications attach to them. It must not depend on
// the queue, the modem or serial port, files, or any package outside the
// standard library; it knows nothing of how the bytes travel.
//
// # Encoding
//
// Every packet a client sends has a size function and an append-style
// encoder, for example [PublishSize] and [AppendPublish]. The size function
// returns the exact number of bytes the encoder will append, so a caller can
// pack packets into a chunk of fixed capacity before writing any of them.
// Encoders append to the caller's slice and keep no buffers of their own; with
// a slice of sufficient capacity they do not allocate. Both validate the
// packet first and return the same error for the same input.
//
// MQTT 5 fields (properties, v5-only subscription options, non-zero reason
// codes) are refused with [ErrPropertyNotAllowed] when encoding for 3.1 or
// 3.1.1, rather than silently dropped: a dropped topic alias or expiry would
// change what the broker delivers.
//
// # Decoding
//
// A [Decoder] reads one packet at a time from a byte stream and decodes every
// packet type, in both directions, so the same code checks what a broker sends
// and what a captured client stream contains. The caller gives a maximum
// packet size; the declared length is checked against it before any memory is
// reserved, and the decoder's single reusable buffer never grows beyond it.
//
// # Errors
//
// Validation failures are reported with sentinel errors ([ErrTopicWildcard],
// [ErrPacketIDZero], [ErrPacketTooLarge], ...) that callers test with
// errors.Is; the returned errors wrap them with context. A refused CONNACK is
// a [*ConnackError], available through errors.As.
//
// # Caveats
//
// The *Packet returned by [Decoder.Next], and every byte slice inside it
// (payloads, passwords, correlation data), alias the decoder's buffer and are
// valid only until the next call to Next. Strings are copies. A Decoder is not
// safe for concurrent use. The decoder waits on its reader for as long as the
// reader blocks: callers bound each wait with a read deadline on the
// connection (for a serial port, its read timeout).
package codec
