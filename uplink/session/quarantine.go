package session

import (
	"fmt"
	"strings"

	"github.com/nbiot-uploader/uploader/codec"
	"github.com/nbiot-uploader/uploader/uplink/fault"
)

// StepQueueQuarantine names a failure to move a record into the quarantine
// (Store.Quarantine) or to mark it suspect (Store.Strike).
const StepQueueQuarantine = "queue quarantine"

// refusalClass is what a refusal of one record in a PUBACK/PUBREC (MQTT 5
// reason >= 0x80) asks for: Quota exceeded (0x97) refuses it for now, not
// for good, so it stays queued (fault.BackOff); every other refusal is the
// record's own and quarantines it (fault.Quarantine).
func refusalClass(reason byte) fault.Class {
	if reason == 0x97 {
		return fault.BackOff
	}
	return fault.Quarantine
}

// blamingDisconnect reports whether an MQTT 5 DISCONNECT reason says the
// broker found fault with a packet it received, which may be one record's
// PUBLISH: Malformed Packet, Protocol Error, Topic Name Invalid, Packet Too
// Large, Payload Format Invalid.
func blamingDisconnect(reason byte) bool {
	switch reason {
	case 0x81, 0x82, 0x90, 0x95, 0x99:
		return true
	}
	return false
}

// quarantine hands one record to Store.Quarantine at once, so a window
// that fails later has still moved it.
func (s *session) quarantine(seq uint64, reason string) error {
	reason = strings.Join(strings.Fields(reason), " ")
	if err := s.store.Quarantine(seq, reason); err != nil {
		return &fault.StepError{Step: StepQueueQuarantine, Err: fmt.Errorf("quarantine record %d: %w", seq, err)}
	}
	s.res.Quarantined++
	s.warn.log(s.log, "quarantine", "record quarantined: the broker will not take it", "seq", seq, "reason", reason)
	return nil
}

// skip quarantines a record that cannot be sent to this broker at all.
func (s *session) skip(rec Record, why string, err error) error {
	s.res.Skipped++
	s.log.Warn(why+"; quarantining it", "seq", rec.Seq, "topic", rec.Topic, "payload_bytes", len(rec.Payload), "err", err)
	return s.quarantine(rec.Seq, fmt.Sprintf("%s: %v", why, err))
}

// reject handles a record the broker refused in its acknowledgement: it is
// quarantined, unless the refusal is temporary (Quota exceeded), when it
// stays queued.
func (s *session) reject(f *flight, t codec.PacketType, ev event) error {
	s.res.Rejected++
	reason := fmt.Sprintf("broker refused it: %s reason 0x%02x (%s)", t, ev.reason, codec.ReasonCodeText(ev.reason))
	if ev.reasonString != "" {
		reason += fmt.Sprintf(" %q", ev.reasonString)
	}
	if refusalClass(ev.reason) != fault.Quarantine {
		s.warn.log(s.log, "quota", "broker refused a record for now; left queued", "seq", f.seq, "reason", reason)
		return nil
	}
	return s.quarantine(f.seq, reason)
}

// oldestUnproven is the sequence number of the oldest record written in
// this session that the broker has neither acknowledged nor been proven to
// have read; ok is false when every record written is proven. Records are
// written in sequence order, so it is the smallest one outstanding.
func (s *session) oldestUnproven() (seq uint64, ok bool) {
	consider := func(q uint64) {
		if !ok || q < seq {
			seq, ok = q, true
		}
	}
	for _, f := range s.inflight {
		consider(f.seq)
	}
	for _, p := range s.pings {
		for _, q := range p {
			consider(q)
		}
	}
	for _, q := range s.qos0 {
		consider(q)
	}
	return seq, ok
}

// blame runs when an MQTT 5 broker ends the connection over a malformed
// packet. A broker handles packets in order, so the culprit is the oldest
// record it had not acknowledged; but a QoS 0 record ahead of it was taken
// without a word and cannot be told apart. So the oldest unproven record
// is only struck (marked suspect), and the next session sends a struck
// record in isolation: everything before it proven first, nothing after it
// until it is proven. Only a DISCONNECT that comes while the isolated
// record is the one thing unproven convicts it: then it is quarantined.
func (s *session) blame(d *codec.Disconnect) error {
	if s.v != codec.V5 || !blamingDisconnect(d.ReasonCode) {
		return nil
	}
	if s.priorBroken {
		// The packets sent ahead of CONNACK under the broker's old limits
		// are the likelier culprit than any one record.
		s.log.Warn("broker closed the connection after lowering its limits; no record is blamed",
			"reason", fmt.Sprintf("0x%02x", d.ReasonCode))
		return nil
	}
	seq, ok := s.oldestUnproven()
	if !ok {
		return nil
	}
	what := fmt.Sprintf("broker closed the connection with DISCONNECT reason 0x%02x (%s)", d.ReasonCode, codec.ReasonCodeText(d.ReasonCode))
	if d.ReasonString != "" {
		what += fmt.Sprintf(" %q", d.ReasonString)
	}
	if s.isolated != 0 && seq == s.isolated {
		return s.quarantine(seq, what+" while it was the only record unacknowledged")
	}
	if err := s.store.Strike(seq); err != nil {
		return &fault.StepError{Step: StepQueueQuarantine, Err: fmt.Errorf("mark record %d suspect: %w", seq, err)}
	}
	s.res.Struck++
	s.log.Warn(what+"; the oldest record unacknowledged is suspect and will be sent alone next time", "seq", seq)
	return nil
}

// isolate sends a struck record alone: it first obtains proof for
// everything written before it, then writes it and waits for its own
// proof (a PINGRESP for QoS 0) before anything else is sent.
func (s *session) isolate(rec Record) error {
	if err := s.proveAll(); err != nil {
		return err
	}
	s.log.Info("sending a suspect record alone", "seq", rec.Seq, "strikes", rec.Strikes)
	s.isolated = rec.Seq
	if err := s.publish(rec); err != nil {
		return err
	}
	if err := s.proveAll(); err != nil {
		return err
	}
	s.isolated = 0
	return nil
}

// proveAll waits until every record written has its proof.
func (s *session) proveAll() error {
	if len(s.qos0) > 0 {
		s.ping()
	}
	for len(s.inflight) > 0 || len(s.pings) > 0 {
		if err := s.wait(); err != nil {
			return err
		}
	}
	return nil
}
