package session

import (
	"log/slog"
	"net"
	"time"

	"github.com/nbiot-uploader/uploader/codec"
)

// Record is what the session needs from a queued reading.
type Record struct {
	Seq       uint64
	Topic     string
	Payload   []byte
	QoS       byte
	Retain    bool
	ExpiresAt time.Time // zero = no expiry
	// Strikes counts the sessions that suspected this record of making the
	// broker close the connection (Store.Strike); a struck record is sent
	// in isolation (see the package documentation).
	Strikes int
	// ContentType, when set, is sent as the MQTT 5 Content Type (a pack
	// names its format); other versions have no place for it.
	ContentType string
}

// Store is the consumer-side view of the queue. Implementations open the
// database per call, so producers can enqueue while a session runs.
type Store interface {
	// Read returns up to maxRecords records (about maxBytes) with Seq > after, oldest first.
	Read(after uint64, maxRecords, maxBytes int) ([]Record, error)
	// Ack deletes records by sequence number.
	Ack(seqs []uint64) error
	// Quarantine durably moves a record the broker will never take out of
	// the queue, keeping it with reason (one line, no secrets) for an
	// operator. It is called as soon as the refusal is known. A record
	// that is no longer queued is not an error.
	Quarantine(seq uint64, reason string) error
	// Strike durably marks a queued record as suspect, so the next
	// session sends it in isolation. A record that is no longer queued is
	// not an error.
	Strike(seq uint64) error
}

// Defaults for the zero values of Config.
const (
	DefaultInFlight     = 256
	DefaultChunkSize    = 1460 // the SIM7000's AT+CIPSEND ceiling and a common TCP MSS
	DefaultBatchRecords = 256
	DefaultBatchBytes   = 256 << 10
	DefaultAckBatch     = 128
	DefaultReplyTimeout = 30 * time.Second
)

// Config describes one session. The zero value of every field but Version and
// ClientID is usable.
type Config struct {
	Version    codec.Version
	ClientID   string
	CleanStart bool
	KeepAlive  uint16 // seconds
	Username   string // sent when non-empty
	Password   []byte // sent when non-nil; never logged
	Will       *codec.Will

	// InFlight caps unacknowledged QoS 1/2 PUBLISHes (default 256). With
	// MQTT 5 the broker's Receive Maximum lowers it further. Within the
	// cap, the window's bytes are held to a measured bandwidth-delay
	// budget (inflight.go), so the cap matters for small records.
	InFlight int
	// ChunkSize is the largest conn.Write. 0 asks conn for MaxChunk() int
	// and otherwise uses DefaultChunkSize. Packets are packed back to back
	// (on a modem every write costs AT framing and often a round trip), and
	// a chunk ends at the last packet that fits in it: only a packet larger
	// than ChunkSize is ever split, by the connection.
	ChunkSize int
	// BatchRecords and BatchBytes size each Store.Read (defaults 256 and 256 KiB).
	BatchRecords int
	BatchBytes   int
	// AckBatch is the number of acknowledged records per Store.Ack (default
	// 128). Acknowledged records are also handed over before every wait for
	// the broker and at the end, whatever the outcome.
	AckBatch int
	// ReplyTimeout bounds every wait for the broker: CONNACK, an
	// acknowledgement while the in-flight window is full, PINGRESP, and each
	// conn.Write (default 30 s). A wait that outlasts KeepAlive sends a
	// PINGREQ so the broker does not drop the connection, but the timeout
	// still counts from the last real progress.
	ReplyTimeout time.Duration
	// TopicAliases enables MQTT 5 topic aliases when the broker allows them,
	// so a repeated topic costs two or three bytes instead of its name.
	TopicAliases bool
	// SeqProperty adds the record's sequence number as the MQTT 5 user
	// property "seq", so consumers can drop the duplicates at-least-once
	// delivery produces.
	SeqProperty bool
	// MaxRecords stops the session after this many records were taken from
	// the queue (sent, skipped or expired); 0 drains the queue.
	MaxRecords int
	// NoPipeline makes the session wait for CONNACK before the first
	// PUBLISH. By default a first chunk of safe records follows CONNECT
	// without waiting, which saves one round trip.
	NoPipeline bool
	// Prior is the CONNACK with which this broker last accepted this
	// client (the caller keeps it between sessions). With it, the session
	// takes the broker's limits as known before the new CONNACK arrives
	// and pipelines up to PriorPipelineChunks chunks of records behind
	// CONNECT within them, rather than one chunk of records any broker
	// accepts: on NB-IoT that keeps the radio sending through the CONNACK's
	// round trip. Should the broker have lowered a limit since, it may
	// close the connection over the pipelined packets; nothing is lost
	// (what was not acknowledged stays queued) and the new CONNACK, in
	// Result.Connack, is what the caller keeps for the next session.
	Prior *codec.Connack

	// OnConnack, if set, is called once the broker has accepted the
	// session, with its CONNACK (say, to learn the MQTT 5 Server Keep
	// Alive, which the session then uses instead of KeepAlive).
	OnConnack func(codec.Connack)

	// Status, if set, is called once the broker has accepted the session,
	// with its CONNACK and the bytes so far; the message it returns (the site's retained status
	// record) goes out at QoS 1 before any further record, so a window that
	// fails later has still reported. It is not a queue record: its PUBACK
	// deletes nothing and a refusal of it fails nothing. nil sends nothing.
	Status func(StatusContext) *Message

	// Downlink subscribes and collects deliveries into the Store's Inbox
	// (subscribe.go, inbox.go).
	Downlink DownlinkConfig

	Logger   *slog.Logger   // default: discard
	Progress func(Progress) // optional, called after each Store.Ack
}

// Progress is reported after each acknowledgement batch.
type Progress struct {
	Sent     int
	Acked    int
	BytesOut int64
}

// Result reports what one session did. It is valid even when Run fails.
type Result struct {
	Sent          int   // PUBLISH packets written
	Acked         int   // records deleted from the queue
	Skipped       int   // records too large for the broker or not encodable: not sent, quarantined
	Expired       int   // records past their ExpiresAt, not sent, left queued
	Rejected      int   // records the broker refused in an MQTT 5 PUBACK/PUBREC/PUBCOMP (reason >= 0x80)
	StatusSent    bool  // the Config.Status message was written
	StatusAcked   bool  // and the broker acknowledged it
	StatusBytes   int   // the status PUBLISH's size, within BytesOut
	Quarantined   int   // records moved to the quarantine (skipped, refused, or proven to make the broker disconnect)
	Struck        int   // records marked suspect (Store.Strike) after a broker DISCONNECT over a malformed packet
	Downgraded    int   // records sent with a lower QoS than queued (broker Maximum QoS)
	RetainCleared int   // records sent without their retain flag (broker has no retain)
	BytesOut      int64 // MQTT bytes written
	BytesIn       int64 // MQTT bytes read
	Writes        int   // conn.Write calls
	Connack       codec.Connack
	Connected     bool           // the broker accepted the session (Connack holds its CONNACK)
	Downlink      DownlinkResult // what the broker delivered
}

// chunker is implemented by connections that know their largest useful write.
type chunker interface{ MaxChunk() int }

func (c Config) withDefaults(conn net.Conn) Config {
	if c.InFlight <= 0 {
		c.InFlight = DefaultInFlight
	}
	if c.InFlight > 65535 {
		c.InFlight = 65535
	}
	if c.ChunkSize <= 0 {
		c.ChunkSize = DefaultChunkSize
		if mc, ok := conn.(chunker); ok && mc.MaxChunk() > 0 {
			c.ChunkSize = mc.MaxChunk()
		}
	}
	if c.BatchRecords <= 0 {
		c.BatchRecords = DefaultBatchRecords
	}
	if c.BatchBytes <= 0 {
		c.BatchBytes = DefaultBatchBytes
	}
	if c.AckBatch <= 0 {
		c.AckBatch = DefaultAckBatch
	}
	if c.ReplyTimeout <= 0 {
		c.ReplyTimeout = DefaultReplyTimeout
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}
