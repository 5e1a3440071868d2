package session

import (
	"fmt"
	"time"

	"github.com/nbiot-uploader/uploader/codec"
	"github.com/nbiot-uploader/uploader/uplink/fault"
)

// MaxInboundPacket is the largest packet the session accepts from the
// broker, so the largest message an Inbox is given; with MQTT 5 CONNECT
// announces it as Maximum Packet Size.
const MaxInboundPacket = maxInboundPacket

// StepInboxStore names a failure to store a message the broker delivered.
const StepInboxStore = "inbox store"

// Inbound is a message the broker delivered from the session's
// subscriptions. Topic and Payload are the session's own copies.
type Inbound struct {
	Topic    string
	Payload  []byte
	QoS      byte
	Retain   bool
	Dup      bool   // the broker marked it as a redelivery
	PacketID uint16 // 0 for QoS 0
}

// InboundOutcome says what an Inbox did with a message.
type InboundOutcome int

const (
	// InboundStored: durably stored; the session acknowledges it.
	InboundStored InboundOutcome = iota
	// InboundDuplicate: stored before (a redelivery); the session
	// acknowledges it again.
	InboundDuplicate
	// InboundFull: not stored, no room. The session does not acknowledge
	// it, so the broker keeps it for a later session, and refuses every
	// further message of this session without asking the Inbox again.
	InboundFull
)

// Inbox is implemented by a Store that keeps what the broker delivers
// (found by a type assertion on the Store; a Store without it has every
// inbound message acknowledged and dropped).
type Inbox interface {
	// StoreInbound stores m durably (synced) before it returns: the
	// session acknowledges the message (PUBACK, PUBREC) only afterwards,
	// so a message is in the inbox or still the broker's, whatever
	// happens. It recognises redeliveries: a QoS 2 message under a packet
	// id stored and not yet released, and a message marked Dup that
	// matches the last one stored under its packet id.
	StoreInbound(m Inbound) (InboundOutcome, error)
	// ReleaseInbound durably forgets the QoS 2 state of packetID: the
	// broker sent PUBREL, so a later message under that id is a new one.
	// It returns before the session sends PUBCOMP.
	ReleaseInbound(packetID uint16) error
}

// DownlinkResult counts what the broker delivered in one session.
type DownlinkResult struct {
	Messages   int   // messages stored in the inbox
	Bytes      int64 // their topic+payload bytes
	Duplicates int   // redeliveries recognised (acknowledged again, not stored)
	Refused    int   // messages not stored because the inbox was full (left with the broker)
	Dropped    int   // messages acknowledged and dropped (no Inbox, or QoS 0 into a full inbox)
	Subscribed bool  // SUBSCRIBE was sent and every filter granted
	// Granted is the SUBACK's reason code per filter, when SUBSCRIBE was sent.
	Granted []byte
	// LastPacketID is the last packet identifier this session used.
	LastPacketID uint16
}

// onInboundPublish stores a message the broker delivered before it is
// acknowledged. Without an Inbox it is acknowledged and dropped: leaving it
// unacknowledged would make the broker resend it forever.
func (s *session) onInboundPublish(ev event) error {
	s.downlinkSeen++
	inbox, ok := s.store.(Inbox)
	if !ok {
		s.res.Downlink.Dropped++
		s.warn.log(s.log, "inbound", "broker delivered a PUBLISH to an upload-only session; dropped", "qos", ev.qos)
		return s.ackInbound(ev)
	}
	if s.inboxFull {
		return s.refuseInbound(ev)
	}
	out, err := inbox.StoreInbound(Inbound{Topic: ev.topic, Payload: ev.payload, QoS: ev.qos,
		Retain: ev.retain, Dup: ev.dup, PacketID: ev.id})
	if err != nil {
		return &fault.StepError{Step: StepInboxStore, Err: fmt.Errorf("store message on %q: %w", ev.topic, err)}
	}
	switch out {
	case InboundStored:
		s.res.Downlink.Messages++
		s.res.Downlink.Bytes += int64(len(ev.topic) + len(ev.payload))
		s.log.Info("downlink message stored", "topic", ev.topic, "qos", ev.qos, "bytes", len(ev.payload))
	case InboundDuplicate:
		s.res.Downlink.Duplicates++
		s.log.Info("downlink redelivery recognised; acknowledged again", "topic", ev.topic, "id", ev.id)
	case InboundFull:
		s.inboxFull = true
		s.log.Warn("inbox full: messages are left with the broker for a later window (see uploader inbox list)",
			"topic", ev.topic)
		return s.refuseInbound(ev)
	}
	return s.ackInbound(ev)
}

// refuseInbound leaves a message unacknowledged, so the broker keeps it
// (a QoS 0 message cannot be kept: it is lost).
func (s *session) refuseInbound(ev event) error {
	if ev.qos == 0 {
		s.res.Downlink.Dropped++
		return nil
	}
	s.res.Downlink.Refused++
	return nil
}

// ackInbound queues the PUBACK or PUBREC of an inbound message.
func (s *session) ackInbound(ev event) error {
	switch ev.qos {
	case 1:
		return s.queueAck(codec.TypePuback, ev.id)
	case 2:
		s.inboundQoS2[ev.id] = true
		// The broker answers PUBREC with PUBREL: that is a reply the
		// session waits for (settle), so it restarts the reply clock.
		s.progress = time.Now()
		return s.queueAck(codec.TypePubrec, ev.id)
	}
	return nil
}

// onInboundPubrel releases a QoS 2 message durably and then completes it.
func (s *session) onInboundPubrel(ev event) error {
	delete(s.inboundQoS2, ev.id)
	if inbox, ok := s.store.(Inbox); ok {
		if err := inbox.ReleaseInbound(ev.id); err != nil {
			return &fault.StepError{Step: StepInboxStore, Err: fmt.Errorf("release QoS 2 packet id %d: %w", ev.id, err)}
		}
	}
	return s.queueAck(codec.TypePubcomp, ev.id)
}
