package session

import (
	"fmt"
	"time"

	"github.com/nbiot-uploader/uploader/codec"
)

// DownlinkConfig makes the session collect what the broker holds for the
// site. With Subscriptions set the caller should make the session persistent
// (Config.CleanStart false, and with MQTT 5 a SessionExpiry), so the broker
// keeps QoS 1 and 2 messages while the site sleeps.
type DownlinkConfig struct {
	// Subscriptions are sent in one SUBSCRIBE right after CONNACK (behind
	// the status message) when the broker has no session for the client
	// (CONNACK Session Present 0) or Resubscribe is set.
	Subscriptions []codec.Subscription
	// Resubscribe sends SUBSCRIBE even when the broker kept the session:
	// the configured set changed since it was last granted.
	Resubscribe bool
	// Unsubscribe lists filters granted before and no longer configured;
	// they are sent in one UNSUBSCRIBE when the broker kept the session.
	Unsubscribe []string
	// Wait is how long the session keeps the connection open for
	// deliveries, counted from SUBACK (or from CONNACK when nothing was
	// subscribed); it runs while the records are streamed, so it only
	// extends a window whose uplink is shorter. 0: no wait.
	Wait time.Duration
	// SessionExpiry is the MQTT 5 Session Expiry Interval in seconds sent
	// in CONNECT (ignored for 3.1 and 3.1.1).
	SessionExpiry uint32
	// ReceiveMaximum is announced in the MQTT 5 CONNECT: the most QoS 1
	// and 2 messages the broker may have unacknowledged with the session
	// (0: the MQTT default of 65,535).
	ReceiveMaximum uint16
	// LastPacketID is the last packet identifier the previous session
	// used (its DownlinkResult.LastPacketID); identifiers continue after
	// it. A persistent session outlives a window that died between PUBREC
	// and PUBCOMP, and the broker then still holds that identifier as an
	// unreleased QoS 2 message: a new record under it would be taken for
	// that message and dropped. Continuing the sequence keeps such an
	// identifier unused for 65,535 packets.
	LastPacketID uint16
	// OnSuback, if set, is called with the SUBACK's reason codes (one per
	// filter, in order) and the UNSUBACK's arrival (unsubscribed true).
	OnSuback func(granted []byte, unsubscribed bool)
}

// subscribe sends the configured SUBSCRIBE and UNSUBSCRIBE after CONNACK.
// Their acknowledgements are awaited with everything else (settle).
func (s *session) subscribe() error {
	d := &s.cfg.Downlink
	s.downlinkFrom = time.Now()
	present := s.res.Connack.SessionPresent
	if len(d.Unsubscribe) > 0 && present {
		id := s.freeID()
		u := codec.Unsubscribe{PacketID: id, Filters: d.Unsubscribe}
		var err error
		if s.out, err = codec.AppendUnsubscribe(s.out, s.v, &u); err != nil {
			return fmt.Errorf("encode UNSUBSCRIBE: %w", err)
		}
		s.nextID, s.unsubID = id, id
		s.expectReply = true
		s.log.Info("unsubscribing", "filters", d.Unsubscribe)
	}
	if len(d.Subscriptions) == 0 || (present && !d.Resubscribe) {
		if len(d.Subscriptions) > 0 {
			s.log.Debug("broker kept the session and its subscriptions; not subscribing again")
		}
		return s.flushFull()
	}
	id := s.freeID()
	sub := codec.Subscribe{PacketID: id, Subscriptions: d.Subscriptions}
	var err error
	if s.out, err = codec.AppendSubscribe(s.out, s.v, &sub); err != nil {
		return fmt.Errorf("encode SUBSCRIBE: %w", err)
	}
	s.nextID, s.subID = id, id
	s.expectReply = true
	filters := make([]string, len(d.Subscriptions))
	for i, f := range d.Subscriptions {
		filters[i] = fmt.Sprintf("%s:%d", f.Filter, f.QoS)
	}
	s.log.Info("subscribing", "filters", filters, "session_present", present)
	return s.flushFull()
}

// subPending reports an unanswered SUBSCRIBE or UNSUBSCRIBE.
func (s *session) subPending() bool { return s.subID != 0 || s.unsubID != 0 }

func (s *session) onSuback(ev event) error {
	if s.subID == 0 || ev.id != s.subID {
		return fmt.Errorf("%w: unexpected SUBACK for packet id %d (no SUBSCRIBE awaiting it)", ErrProtocol, ev.id)
	}
	s.subID = 0
	s.downlinkFrom = time.Now()
	d := &s.cfg.Downlink
	if len(ev.granted) != len(d.Subscriptions) {
		return fmt.Errorf("%w: SUBACK with %d reason codes for %d filters", ErrProtocol, len(ev.granted), len(d.Subscriptions))
	}
	s.res.Downlink.Granted = ev.granted
	all := true
	for i, code := range ev.granted {
		if code >= 0x80 {
			all = false
			s.log.Error("broker refused a subscription; messages on it will not arrive", "filter", d.Subscriptions[i].Filter,
				"reason", codec.ReasonCodeText(code), "reason_string", ev.reasonString)
		} else if code < d.Subscriptions[i].QoS {
			s.log.Warn("broker granted a lower QoS than asked", "filter", d.Subscriptions[i].Filter, "asked", d.Subscriptions[i].QoS, "granted", code)
		}
	}
	s.res.Downlink.Subscribed = all
	if d.OnSuback != nil {
		d.OnSuback(ev.granted, false)
	}
	return nil
}

func (s *session) onUnsuback(ev event) error {
	if s.unsubID == 0 || ev.id != s.unsubID {
		return fmt.Errorf("%w: unexpected UNSUBACK for packet id %d (no UNSUBSCRIBE awaiting it)", ErrProtocol, ev.id)
	}
	s.unsubID = 0
	if d := &s.cfg.Downlink; d.OnSuback != nil {
		d.OnSuback(nil, true)
	}
	return nil
}

// awaitDownlink keeps the connection open for what the broker holds for
// the site, and no longer than needed: it sends a PINGREQ and waits for its
// PINGRESP. A broker writes the messages it holds for a resumed session, and
// the retained ones after a SUBACK, before it answers a packet read after
// them, so a PINGRESP with no delivery since its PINGREQ means nothing more
// is queued; a delivery in between earns another PINGREQ. Downlink.Wait,
// counted from SUBACK (or CONNACK), bounds it all, so a broker that floods
// the session cannot hold it open; a full inbox ends it at once. Then every
// inbound QoS 2 exchange is completed.
func (s *session) awaitDownlink() error {
	wait := s.cfg.Downlink.Wait
	if wait <= 0 || len(s.cfg.Downlink.Subscriptions) == 0 {
		return nil
	}
	deadline := s.downlinkFrom.Add(wait)
	for !s.inboxFull && time.Now().Before(deadline) {
		seen := s.downlinkSeen
		s.ping()
		if err := s.flushAll(); err != nil {
			return err
		}
		t := time.NewTimer(time.Until(deadline))
		for len(s.pings) > 0 && !s.inboxFull {
			select {
			case ev, ok := <-s.rd.events:
				err := s.handle(ev, ok)
				if err == nil {
					err = s.flushAll()
				}
				if err != nil {
					t.Stop()
					return err
				}
				continue
			case <-t.C:
			case <-s.ctx.Done():
				t.Stop()
				return fmt.Errorf("wait for downlink messages: %w", s.ctx.Err())
			}
			break
		}
		t.Stop()
		if len(s.pings) > 0 {
			s.log.Info("downlink wait ended", "wait", wait, "messages", s.res.Downlink.Messages)
			break
		}
		if s.downlinkSeen == seen {
			break
		}
	}
	s.progress = time.Now()
	for len(s.inboundQoS2) > 0 || len(s.pings) > 0 {
		if err := s.wait(); err != nil {
			return err
		}
	}
	return nil
}
