// Package session runs one MQTT session over an already connected net.Conn:
// one CONNECT, a stream of PUBLISH packets for queued records packed into
// chunks that end on packet boundaries, the broker's acknowledgements, and one DISCONNECT.
//
// # What it owns
//
// The session owns the protocol dialogue and the proof of delivery. A record
// is handed to [Store.Ack] (and so deleted) only when the broker has provably
// taken it: a PUBACK for QoS 1, a PUBCOMP for QoS 2, and for QoS 0 a PINGRESP
// to a PINGREQ written after the record. (A modem's TCP acknowledgement,
// AT+CIPACK, is no such proof: it says the broker's host received the bytes,
// not that the broker took the PUBLISH.)
// A record is never deleted because a write returned without error: on a modem
// that only means the bytes left the UART. Every failure leaves every record
// that was not acknowledged in the queue, so the next window sends it again
// (at-least-once delivery; consumers de-duplicate with the "seq" user property).
//
// The session honours every limit the broker announces in its MQTT 5 CONNACK:
// Receive Maximum (in-flight window), Topic Alias Maximum, Maximum Packet Size
// (a larger record is skipped and left queued), Maximum QoS (records are sent
// at the lower QoS and counted in [Result.Downgraded]), Retain Available and
// Server Keep Alive (it replaces [Config.KeepAlive] for the PINGREQ timing).
//
// Before the CONNACK arrives the broker's limits are unknown, so the records
// pipelined right behind CONNECT (which saves one round trip on NB-IoT) are
// limited to what any broker accepts: at most one chunk, QoS 0 or 1, not
// retained, small packets, and with MQTT 5 at most one QoS 1 packet, because a
// Receive Maximum of 1 is legal. A refused login therefore wastes at most one
// chunk and deletes nothing.
//
// # What it must not depend on
//
// The package speaks MQTT only through package codec and sees the queue only
// through the [Store] interface; it knows nothing of bbolt, serial ports, AT
// commands or modems. A modem connection may advertise its send limit with a
// MaxChunk() int method; that is optional.
//
// # Concurrency
//
// [Run] starts one reader goroutine that decodes broker packets and hands them
// to the writer loop, which runs on the caller's goroutine. Run waits for the
// reader to stop before it returns; it never closes conn.
package session
