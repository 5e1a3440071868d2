package uplink

import (
	"errors"

	"github.com/nbiot-uploader/uploader/queue"
	"github.com/nbiot-uploader/uploader/uplink/session"
)

// queueStore adapts the queue to the session's consumer-side Store. Every
// call is one short database open, so sensor scripts can enqueue while the
// window drains.
type queueStore struct {
	q        *queue.Queue
	inboxMax int64 // Config.InboxMaxBytes
}

func (s queueStore) Read(after uint64, maxRecords, maxBytes int) ([]session.Record, error) {
	recs, err := s.q.Read(after, maxRecords, maxBytes)
	if err != nil {
		return nil, err
	}
	out := make([]session.Record, len(recs))
	for i, r := range recs {
		out[i] = session.Record{
			Seq:       r.Seq,
			Topic:     r.Topic,
			Payload:   r.Payload,
			QoS:       r.QoS,
			Retain:    r.Retain,
			ExpiresAt: r.ExpiresAt,
			Strikes:   r.Strikes,
		}
	}
	return out, nil
}

func (s queueStore) Ack(seqs []uint64) error { return s.q.Ack(seqs) }

// Quarantine moves a record the broker will never take into the queue
// file's quarantine. A record already gone (dropped by a queue limit while
// the window ran) needs no moving.
func (s queueStore) Quarantine(seq uint64, reason string) error {
	if err := s.q.Quarantine(seq, reason); err != nil && !errors.Is(err, queue.ErrNotFound) {
		return err
	}
	return nil
}

// Strike marks a record suspect; a record already gone needs no mark.
func (s queueStore) Strike(seq uint64) error {
	if _, err := s.q.Strike(seq); err != nil && !errors.Is(err, queue.ErrNotFound) {
		return err
	}
	return nil
}

// StoreInbound stores a message the broker delivered in the queue file's
// inbox, fsync'd, before the session acknowledges it.
func (s queueStore) StoreInbound(m session.Inbound) (session.InboundOutcome, error) {
	out, _, err := s.q.PutInbox(queue.InboxMessage{Topic: m.Topic, Payload: m.Payload, QoS: m.QoS,
		Retain: m.Retain, PacketID: m.PacketID}, m.Dup, s.inboxMax)
	if err != nil {
		return 0, err
	}
	switch out {
	case queue.InboxDuplicate:
		return session.InboundDuplicate, nil
	case queue.InboxFull:
		return session.InboundFull, nil
	}
	return session.InboundStored, nil
}

// ReleaseInbound forgets a QoS 2 packet id the broker released.
func (s queueStore) ReleaseInbound(packetID uint16) error { return s.q.ReleaseInbox(packetID) }
