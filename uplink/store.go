package uplink

import (
	"github.com/nbiot-uploader/uploader/queue"
	"github.com/nbiot-uploader/uploader/uplink/session"
)

// queueStore adapts the queue to the session's consumer-side Store. Every
// call is one short database open, so sensor scripts can enqueue while the
// window drains.
type queueStore struct {
	q *queue.Queue
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
		}
	}
	return out, nil
}

func (s queueStore) Ack(seqs []uint64) error { return s.q.Ack(seqs) }
