package session

import (
	"errors"
	"fmt"
	"time"

	"github.com/nbiot-uploader/uploader/codec"
	"github.com/nbiot-uploader/uploader/uplink/fault"
)

// replyPacer is implemented by connections whose reads cost something, so
// they read only while replies are due (uplink/modem.Conn: each read is an
// AT+CIPRXGET exchange on the UART). due counts the broker packets the
// session awaits; blocked says it can send nothing more until one comes.
type replyPacer interface{ AwaitReplies(due int, blocked bool) }

// pace tells a replyPacer connection what the session awaits, when that
// changed.
func (s *session) pace(blocked bool) {
	p, ok := s.conn.(replyPacer)
	if !ok {
		return
	}
	due := len(s.inflight) + len(s.pings) + len(s.inboundQoS2)
	if !s.connacked {
		due++
	}
	if s.paced && due == s.pacedDue && blocked == s.pacedBlocked {
		return
	}
	s.paced, s.pacedDue, s.pacedBlocked = true, due, blocked
	p.AwaitReplies(due, blocked)
}

// poll handles every broker packet that has already arrived, without blocking.
func (s *session) poll() error {
	defer s.pace(false)
	for {
		select {
		case ev, ok := <-s.rd.events:
			if err := s.handle(ev, ok); err != nil {
				return err
			}
		default:
			return nil
		}
	}
}

// wait writes what is buffered, hands proven records to the store, then
// blocks until a broker packet arrives and handles it together with any that
// arrived with it. It fails when ReplyTimeout passes without progress: no
// write and no broker packet other than the answer to a keep-alive PINGREQ,
// which it sends when the wait outlasts the keep-alive interval.
func (s *session) wait() error {
	if err := s.flushAll(); err != nil {
		return err
	}
	if err := s.flushAcks(); err != nil {
		return err
	}
	keepAlive := s.keepAlive
	s.pace(true)
	for {
		deadline := s.progress.Add(s.cfg.ReplyTimeout)
		wake := deadline
		if keepAlive > 0 && s.lastWrite.Add(keepAlive).Before(wake) {
			wake = s.lastWrite.Add(keepAlive)
		}
		t := time.NewTimer(time.Until(wake))
		select {
		case ev, ok := <-s.rd.events:
			t.Stop()
			if err := s.handle(ev, ok); err != nil {
				return err
			}
			return s.poll()
		case <-t.C:
			if !wake.Before(deadline) {
				return fmt.Errorf("%w: waited %s for %s", ErrReplyTimeout, s.cfg.ReplyTimeout, s.awaiting())
			}
			s.ping()
			if err := s.flushAll(); err != nil {
				return err
			}
		case <-s.ctx.Done():
			t.Stop()
			return fmt.Errorf("wait for %s: %w", s.awaiting(), s.ctx.Err())
		}
	}
}

// awaiting describes what a wait is for, for error messages.
func (s *session) awaiting() string {
	switch {
	case !s.connacked:
		return "CONNACK"
	case len(s.inflight) > 0 && len(s.pings) > 0:
		return fmt.Sprintf("%d acknowledgements and PINGRESP", len(s.inflight))
	case len(s.inflight) > 0:
		return fmt.Sprintf("%d acknowledgements", len(s.inflight))
	case len(s.pings) > 0:
		return "PINGRESP"
	case len(s.inboundQoS2) > 0:
		return "PUBREL"
	case s.subPending():
		return "SUBACK"
	}
	return "a broker packet"
}

// handle applies one broker packet. ok is false once the reader has stopped.
func (s *session) handle(ev event, ok bool) error {
	if !ok {
		return s.readerErr()
	}
	if ev.err != nil {
		s.rdErr = ev.err
		return s.readerErr()
	}
	s.log.Debug("mqtt packet from broker", "type", ev.typ.String(), "id", ev.id, "reason", ev.reason)
	// Only replies to what the session sent count as progress: a broker
	// that answers keep-alives or pushes its own messages but never
	// acknowledges ours must still run into ReplyTimeout.
	switch ev.typ {
	case codec.TypeConnack, codec.TypePuback, codec.TypePubrec, codec.TypePubcomp, codec.TypeSuback, codec.TypeUnsuback:
		s.progress = time.Now()
	case codec.TypePingresp:
		if len(s.pings) > 0 && len(s.pings[0]) > 0 {
			s.progress = time.Now()
		}
	}
	if !s.connacked && ev.typ != codec.TypeConnack && ev.typ != codec.TypeDisconnect {
		return fmt.Errorf("%w: %s before CONNACK", ErrProtocol, ev.typ)
	}
	switch ev.typ {
	case codec.TypeConnack:
		return s.onConnack(&ev.connack)
	case codec.TypePuback:
		return s.onPuback(ev)
	case codec.TypePubrec:
		return s.onPubrec(ev)
	case codec.TypePubcomp:
		return s.onPubcomp(ev)
	case codec.TypePingresp:
		return s.onPingresp()
	case codec.TypeDisconnect:
		derr := disconnectError(s.v, &ev.disconnect)
		if err := s.blame(&ev.disconnect); err != nil {
			return fmt.Errorf("%w (and then: %w)", derr, err)
		}
		return derr
	case codec.TypePublish:
		return s.onInboundPublish(ev)
	case codec.TypePubrel:
		return s.onInboundPubrel(ev)
	case codec.TypeSuback:
		return s.onSuback(ev)
	case codec.TypeUnsuback:
		return s.onUnsuback(ev)
	}
	return fmt.Errorf("%w: unexpected %s from broker", ErrProtocol, ev.typ)
}

// readerErr is the error that stopped the reader, preferring the context's
// (a cancelled context stops the reader through a past deadline).
func (s *session) readerErr() error {
	if err := s.ctx.Err(); err != nil {
		return err
	}
	if s.rdErr == nil {
		return fmt.Errorf("%w: reader stopped", ErrBrokerDisconnect)
	}
	return s.rdErr
}

func (s *session) onConnack(c *codec.Connack) error {
	if s.connacked {
		return fmt.Errorf("%w: second CONNACK", ErrProtocol)
	}
	s.res.Connack = *c
	if err := c.Err(s.v); err != nil {
		var ce *codec.ConnackError
		if errors.As(err, &ce) {
			return &RefusedError{Err: ce}
		}
		return fmt.Errorf("%w: %w", ErrProtocol, err)
	}
	s.connacked = true
	s.res.Connected = true
	if s.cfg.Prior != nil {
		s.checkPrior(c)
	}
	s.applyLimits(c)
	if s.v == codec.V5 && c.HasServerKeepAlive {
		// [MQTT-3.2.2-21]: the client uses the server's value.
		s.keepAlive = time.Duration(c.ServerKeepAlive) * time.Second
	}
	if s.cfg.OnConnack != nil {
		s.cfg.OnConnack(*c)
	}
	s.log.Debug("mqtt connected", "session_present", c.SessionPresent, "in_flight", s.inflightMax,
		"max_qos", s.maxQoS, "retain", s.retainOK, "max_packet", s.maxPacket, "topic_aliases", s.aliases.max,
		"keepalive", s.keepAlive)
	return nil
}

// applyLimits takes the limits of a CONNACK: the one that just arrived, or
// Config.Prior before it does. Topic aliases already written stay
// assigned; only the number of aliases changes.
func (s *session) applyLimits(c *codec.Connack) {
	s.inflightMax = s.cfg.InFlight
	if s.v != codec.V5 {
		return
	}
	if c.ReceiveMaximum > 0 {
		s.inflightMax = min(s.inflightMax, int(c.ReceiveMaximum))
	}
	s.maxQoS = 2
	if c.HasMaximumQoS {
		s.maxQoS = c.MaximumQoS
	}
	s.retainOK = c.RetainAvailable
	s.maxPacket = int(c.MaximumPacketSize)
	if s.cfg.TopicAliases {
		s.aliases.max = c.TopicAliasMaximum
	}
}

// checkPrior warns when the broker now announces a tighter limit than
// Config.Prior, under which records went ahead of this CONNACK: the broker
// may refuse them or close the connection. The records stay queued either
// way, and the caller keeps the new CONNACK for the next session.
func (s *session) checkPrior(c *codec.Connack) {
	if s.v != codec.V5 {
		return
	}
	p := s.cfg.Prior
	lower := func(now, before uint32) bool { return now != 0 && (before == 0 || now < before) }
	if lower(uint32(c.ReceiveMaximum), uint32(p.ReceiveMaximum)) || c.TopicAliasMaximum < p.TopicAliasMaximum ||
		lower(c.MaximumPacketSize, p.MaximumPacketSize) || (c.HasMaximumQoS && (!p.HasMaximumQoS || c.MaximumQoS < p.MaximumQoS)) ||
		(p.RetainAvailable && !c.RetainAvailable) {
		s.priorBroken = true
		s.log.Warn("the broker lowered its limits since the last window; records sent ahead of its CONNACK may be refused",
			"receive_maximum", c.ReceiveMaximum, "topic_alias_maximum", c.TopicAliasMaximum,
			"maximum_packet_size", c.MaximumPacketSize, "maximum_qos", c.MaximumQoS, "retain", c.RetainAvailable)
	}
}

func (s *session) onPuback(ev event) error {
	f, ok := s.inflight[ev.id]
	if !ok || f.qos != 1 {
		return fmt.Errorf("%w: PUBACK for packet id %d, which is not a QoS 1 PUBLISH in flight", ErrProtocol, ev.id)
	}
	delete(s.inflight, ev.id)
	s.win.landed(f)
	if f.status {
		s.statusAcked(ev)
		return nil
	}
	if ev.reason >= 0x80 {
		return s.reject(f, codec.TypePuback, ev)
	}
	return s.ackSeq(f.seq)
}

func (s *session) onPubrec(ev event) error {
	f, ok := s.inflight[ev.id]
	if !ok || f.qos != 2 || f.released {
		return fmt.Errorf("%w: PUBREC for packet id %d, which is not a QoS 2 PUBLISH awaiting it", ErrProtocol, ev.id)
	}
	if ev.reason >= 0x80 {
		delete(s.inflight, ev.id)
		s.win.landed(f)
		return s.reject(f, codec.TypePubrec, ev)
	}
	f.released = true
	return s.queueAck(codec.TypePubrel, ev.id)
}

func (s *session) onPubcomp(ev event) error {
	f, ok := s.inflight[ev.id]
	if !ok || !f.released {
		return fmt.Errorf("%w: PUBCOMP for packet id %d, which is not awaiting it", ErrProtocol, ev.id)
	}
	delete(s.inflight, ev.id)
	s.win.landed(f)
	if ev.reason >= 0x80 {
		// Only 0x92 (Packet identifier not found) is defined here: the
		// broker accepted the message with its PUBREC and then lost track
		// of the exchange. That is no fault of the record, so it is not
		// quarantined; it stays queued and is sent again.
		s.res.Rejected++
		s.warn.log(s.log, "pubcomp", "broker lost a QoS 2 exchange after accepting the record; left queued", "seq", f.seq,
			"reason", codec.ReasonCodeText(ev.reason), "reason_string", ev.reasonString)
		return nil
	}
	return s.ackSeq(f.seq)
}

func (s *session) onPingresp() error {
	if len(s.pings) == 0 {
		s.log.Debug("PINGRESP without a PINGREQ; ignored")
		return nil
	}
	proven := s.pings[0]
	s.pings = s.pings[1:]
	for _, seq := range proven {
		if err := s.ackSeq(seq); err != nil {
			return err
		}
	}
	return nil
}

// queueAck appends an acknowledgement; it is written with the next chunk
// or before the next wait.
func (s *session) queueAck(t codec.PacketType, id uint16) error {
	out, err := codec.AppendAck(s.out, s.v, t, id, 0)
	if err != nil {
		return fmt.Errorf("encode %s: %w", t, err)
	}
	s.out = out
	if t == codec.TypePubrel {
		s.expectReply = true
	}
	return nil
}

// ackSeq records proof for one record and deletes a batch once it is full.
func (s *session) ackSeq(seq uint64) error {
	s.acked = append(s.acked, seq)
	if len(s.acked) >= s.cfg.AckBatch {
		return s.flushAcks()
	}
	return nil
}

// flushAcks hands the proven records to the store.
func (s *session) flushAcks() error {
	if len(s.acked) == 0 {
		return nil
	}
	seqs := s.acked
	// A fresh slice: the store may keep the one it was given.
	s.acked = make([]uint64, 0, min(s.cfg.AckBatch, 1024))
	if err := s.store.Ack(seqs); err != nil {
		return &fault.StepError{Step: StepQueueAck, Err: fmt.Errorf("delete %d acknowledged records: %w", len(seqs), err)}
	}
	s.res.Acked += len(seqs)
	if s.cfg.Progress != nil {
		s.cfg.Progress(Progress{Sent: s.res.Sent, Acked: s.res.Acked, BytesOut: s.res.BytesOut})
	}
	return nil
}
