package session

import (
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/nbiot-uploader/uploader/codec"
	"github.com/nbiot-uploader/uploader/uplink/fault"
)

// peek returns the next record to send without taking it, reading the next
// batch from the store when the current one is used up.
func (s *session) peek() (Record, bool, error) {
	if s.cfg.MaxRecords > 0 && s.taken >= s.cfg.MaxRecords {
		return Record{}, false, nil
	}
	if len(s.pending) == 0 && !s.drained {
		n := s.cfg.BatchRecords
		if s.cfg.MaxRecords > 0 {
			n = min(n, s.cfg.MaxRecords-s.taken)
		}
		recs, err := s.store.Read(s.lastRead, n, s.cfg.BatchBytes)
		if err != nil {
			return Record{}, false, &fault.StepError{Step: StepQueueRead, Err: fmt.Errorf("read after seq %d: %w", s.lastRead, err)}
		}
		// Only strictly newer records: a store that repeats itself must
		// not make the session send a record twice or loop forever.
		fresh := recs[:0:0]
		for _, r := range recs {
			if r.Seq > s.lastRead {
				fresh = append(fresh, r)
				s.lastRead = r.Seq
			}
		}
		s.pending = fresh
		if len(fresh) == 0 {
			s.drained = true
		}
	}
	if len(s.pending) == 0 {
		return Record{}, false, nil
	}
	return s.pending[0], true, nil
}

func (s *session) effectiveQoS(q byte) byte { return min(q, s.maxQoS) }

// buildPublish fills s.pub for rec under the broker's current limits. It
// changes no session state, so pipeline can use it to try a record. A nil
// packet with a nil error means the record has expired.
func (s *session) buildPublish(rec Record) (*codec.Publish, error) {
	if err := codec.ValidateTopicName(rec.Topic); err != nil {
		return nil, fmt.Errorf("topic %q: %w", rec.Topic, err)
	}
	if rec.QoS > 2 {
		return nil, fmt.Errorf("QoS %d: %w", rec.QoS, codec.ErrInvalidQoS)
	}
	p := &s.pub
	*p = codec.Publish{
		Topic:   rec.Topic,
		Payload: rec.Payload,
		QoS:     s.effectiveQoS(rec.QoS),
		Retain:  rec.Retain && s.retainOK,
	}
	if !rec.ExpiresAt.IsZero() {
		left := time.Until(rec.ExpiresAt)
		if left <= 0 {
			return nil, nil
		}
		if s.v == codec.V5 {
			p.HasMessageExpiry = true
			p.MessageExpiry = expirySeconds(left)
		}
	}
	if s.v == codec.V5 {
		p.ContentType = rec.ContentType
		if s.cfg.SeqProperty {
			s.props[0] = codec.UserProperty{Key: "seq", Value: strconv.FormatUint(rec.Seq, 10)}
			p.UserProperties = s.props[:]
		}
		if alias, known := s.aliases.lookup(rec.Topic); known {
			p.Topic = ""
			p.TopicAlias = alias
		} else {
			p.TopicAlias = alias // 0 when the table is full or aliases are off
		}
	}
	if p.QoS > 0 {
		p.PacketID = s.freeID()
	}
	return p, nil
}

// expirySeconds rounds up, so a record is never announced as expiring
// before its ExpiresAt.
func expirySeconds(d time.Duration) uint32 {
	secs := math.Ceil(d.Seconds())
	if secs > math.MaxUint32 {
		return math.MaxUint32
	}
	return uint32(secs)
}

// freeID returns the next packet identifier after the last one used,
// cycling through 1..65535 and skipping identifiers still in flight. It does
// not reserve the identifier; publish does when it writes the packet.
func (s *session) freeID() uint16 {
	id := s.nextID
	for {
		id++
		if id == 0 {
			id = 1
		}
		if _, busy := s.inflight[id]; !busy {
			return id
		}
	}
}

// publish takes rec from the pending batch and appends its PUBLISH to the
// output, or counts why it was not sent. Full chunks are written at once.
func (s *session) publish(rec Record) error {
	s.pending = s.pending[1:]
	s.taken++
	p, err := s.buildPublish(rec)
	if err != nil {
		return s.skip(rec, "record cannot be encoded", err)
	}
	if p == nil {
		s.res.Expired++
		s.log.Debug("record expired, not sent", "seq", rec.Seq, "expires_at", rec.ExpiresAt)
		return nil
	}
	size, err := codec.PublishSize(s.v, p)
	if err != nil {
		return s.skip(rec, "record cannot be encoded", err)
	}
	if s.maxPacket > 0 && size > s.maxPacket {
		return s.skip(rec, "record larger than the broker's Maximum Packet Size",
			fmt.Errorf("PUBLISH of %d bytes, broker maximum %d: %w", size, s.maxPacket, codec.ErrPacketTooLarge))
	}
	n0 := len(s.out)
	out, err := codec.AppendPublish(s.out, s.v, p)
	if err != nil {
		s.out = s.out[:n0]
		return s.skip(rec, "record cannot be encoded", err)
	}
	s.out = out
	s.expectReply = true
	if p.TopicAlias != 0 && p.Topic != "" {
		s.aliases.assign(rec.Topic, p.TopicAlias)
	}
	if p.QoS < rec.QoS {
		s.res.Downgraded++
		s.warn.log(s.log, "downgrade", "broker's Maximum QoS is lower than the record's; sending with lower QoS",
			"seq", rec.Seq, "qos", rec.QoS, "broker_max_qos", s.maxQoS)
	}
	if rec.Retain && !p.Retain {
		s.res.RetainCleared++
		s.warn.log(s.log, "retain", "broker does not support retained messages; sending without retain", "seq", rec.Seq)
	}
	if p.QoS > 0 {
		f := &flight{seq: rec.Seq, qos: p.QoS}
		s.inflight[p.PacketID] = f
		s.win.sent(f, len(s.out)-n0)
		s.nextID = p.PacketID
	} else {
		s.qos0 = append(s.qos0, rec.Seq)
		// Proof for QoS 0 in batches: a 2-byte PINGREQ per AckBatch records.
		// Not before CONNACK, which must not cost more than one chunk.
		if s.connacked && len(s.qos0) >= s.cfg.AckBatch {
			s.ping()
		}
	}
	s.res.Sent++
	return s.flushFull()
}
