package session

import (
	"fmt"

	"github.com/nbiot-uploader/uploader/codec"
)

// StatusContext is what Config.Status is told: the broker's CONNACK and
// the MQTT bytes of the session so far.
type StatusContext struct {
	Connack           codec.Connack
	BytesOut, BytesIn int64
}

// Message is a PUBLISH the session makes itself rather than reading it
// from the store (Config.Status).
type Message struct {
	Topic   string
	Payload []byte
	Retain  bool
}

// publishStatus sends the Config.Status message right after CONNACK, at
// QoS 1 (or the broker's Maximum QoS), ahead of the records not yet sent.
// A message the broker cannot take is logged and left out: the status is
// a report, never a reason to fail the window.
func (s *session) publishStatus() error {
	if s.cfg.Status == nil {
		return nil
	}
	m := s.cfg.Status(StatusContext{Connack: s.res.Connack, BytesOut: s.res.BytesOut, BytesIn: s.rd.bytesIn.Load()})
	if m == nil {
		return nil
	}
	if err := codec.ValidateTopicName(m.Topic); err != nil {
		s.log.Warn("status message not sent", "err", fmt.Errorf("topic %q: %w", m.Topic, err))
		return nil
	}
	// Wait for room in the in-flight window (records pipelined ahead of
	// CONNACK may fill a Receive Maximum of 1).
	for s.effectiveQoS(1) > 0 && len(s.inflight) >= s.inflightMax {
		if err := s.wait(); err != nil {
			return err
		}
	}
	p := codec.Publish{Topic: m.Topic, Payload: m.Payload, QoS: s.effectiveQoS(1), Retain: m.Retain && s.retainOK}
	if p.QoS > 0 {
		p.PacketID = s.freeID()
	}
	size, err := codec.PublishSize(s.v, &p)
	if err == nil && s.maxPacket > 0 && size > s.maxPacket {
		err = fmt.Errorf("PUBLISH of %d bytes, broker maximum %d: %w", size, s.maxPacket, codec.ErrPacketTooLarge)
	}
	if err != nil {
		s.log.Warn("status message not sent", "err", err)
		return nil
	}
	if s.out, err = codec.AppendPublish(s.out, s.v, &p); err != nil {
		s.log.Warn("status message not sent", "err", err)
		return nil
	}
	s.expectReply = true
	if p.QoS > 0 {
		f := &flight{qos: p.QoS, status: true}
		s.inflight[p.PacketID] = f
		s.win.sent(f, size)
		s.nextID = p.PacketID
	}
	s.res.StatusSent, s.res.StatusBytes = true, size
	s.log.Debug("status message queued", "topic", m.Topic, "bytes", size)
	return s.flushFull()
}

// statusAcked notes the broker's answer to the status message.
func (s *session) statusAcked(ev event) {
	if ev.reason >= 0x80 {
		s.log.Warn("broker refused the status message", "reason", codec.ReasonCodeText(ev.reason), "reason_string", ev.reasonString)
		return
	}
	s.res.StatusAcked = true
}
