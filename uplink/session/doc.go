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
// (a larger record is not sent but quarantined), Maximum QoS (records are sent
// at the lower QoS and counted in [Result.Downgraded]), Retain Available and
// Server Keep Alive (it replaces [Config.KeepAlive] for the PINGREQ timing).
//
// Before the CONNACK arrives the broker's limits are unknown, so the records
// pipelined right behind CONNECT (which saves one round trip on NB-IoT) are
// limited to what any broker accepts: at most one chunk, QoS 0 or 1, not
// retained, small packets, and with MQTT 5 at most one QoS 1 packet, because a
// Receive Maximum of 1 is legal. A refused login therefore wastes at most one
// chunk and deletes nothing. When the caller remembers the CONNACK with which
// the broker last accepted this client ([Config.Prior]), up to
// [PriorPipelineChunks] chunks go ahead within those limits instead, so the
// radio keeps sending through the CONNACK's round trip.
//
// # Poison records
//
// A record the broker will never take must not block the records behind it
// nor be deleted as if delivered, so it goes to the quarantine
// ([Store.Quarantine]) the moment that is known, with the reason:
//
//   - refused in an MQTT 5 PUBACK or PUBREC (reason >= 0x80, e.g. 0x87 Not
//     authorized from an ACL), counted in [Result.Rejected] too; except 0x97
//     Quota exceeded, a refusal for now, which leaves the record queued. A
//     PUBCOMP can only say 0x92 (the broker lost the exchange after its
//     PUBREC accepted the message), which is no fault of the record: it
//     stays queued;
//   - larger than the broker's Maximum Packet Size, or not encodable at all
//     (say a topic the codec rejects), counted in [Result.Skipped] too.
//
// A broker may instead end the connection: MQTT 5 DISCONNECT 0x81 Malformed
// Packet, 0x82 Protocol Error, 0x90 Topic Name Invalid, 0x95 Packet Too
// Large or 0x99 Payload Format Invalid. The broker reads packets in order,
// so the culprit is the oldest record it has not acknowledged, but a QoS 0
// record ahead of it was taken without a word and looks the same. So the
// session does not quarantine on that evidence: it strikes ([Store.Strike])
// the oldest record written and not yet proven, a durable mark. The next
// session sends a struck record in isolation: it first obtains proof for
// everything written before it, then writes it and waits for its own proof
// (a PINGRESP for QoS 0) before it sends anything else. Proven, it is
// deleted like any other; if the broker disconnects with such a reason
// while it is the one record unproven, the evidence is conclusive and it is
// quarantined. An innocent record costs one round trip in one later window;
// a poison record is quarantined in its second or third window, and the
// records behind it go on. A connection that merely drops (no DISCONNECT,
// or another reason: server busy, shutting down, keep-alive) blames no
// record, and MQTT 3.1.1 has no server DISCONNECT, so it never does.
//
// # Downlink
//
// With [Config.Downlink] the session subscribes after CONNACK (when the
// broker has no session for the client, or the set changed) and hands every
// PUBLISH the broker delivers to the Store's optional [Inbox] before it
// acknowledges it (PUBACK, PUBREC; PUBCOMP after [Inbox.ReleaseInbound]). A
// full Inbox leaves messages unacknowledged, with the broker. After the
// uplink the session waits for deliveries at most Downlink.Wait, ending
// early when a PINGREQ is answered with nothing delivered since.
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
