package codec

import (
	"errors"
	"fmt"
)

// Subscription is one topic filter of a SUBSCRIBE with its options.
// NoLocal, RetainAsPublished and RetainHandling are MQTT 5 only.
type Subscription struct {
	Filter            string
	QoS               byte
	NoLocal           bool
	RetainAsPublished bool
	RetainHandling    byte // 0 send retained, 1 only for new subscriptions, 2 never
}

// Subscribe is a SUBSCRIBE packet.
type Subscribe struct {
	PacketID      uint16
	Subscriptions []Subscription
	// MQTT 5 only.
	SubscriptionIdentifier uint32 // 0 = absent; at most MaxRemainingLength
	UserProperties         []UserProperty
}

type subscribeLayout struct{ remaining, props, total int }

func layoutSubscribe(v Version, s *Subscribe) (subscribeLayout, error) {
	var l subscribeLayout
	if err := checkVersion(v); err != nil {
		return l, fmt.Errorf("SUBSCRIBE: %w", err)
	}
	if s.PacketID == 0 {
		return l, fmt.Errorf("SUBSCRIBE: %w", ErrPacketIDZero) // [MQTT-2.2.1-3]
	}
	if len(s.Subscriptions) == 0 {
		return l, malformedf("SUBSCRIBE without topic filters") // [MQTT-3.8.3-3]
	}
	l.remaining = 2
	for i := range s.Subscriptions {
		sub := &s.Subscriptions[i]
		if err := ValidateTopicFilter(sub.Filter); err != nil {
			return l, fmt.Errorf("SUBSCRIBE: %w", err)
		}
		if err := checkQoS("SUBSCRIBE QoS", sub.QoS); err != nil {
			return l, err
		}
		if sub.RetainHandling > 2 {
			return l, malformedf("SUBSCRIBE retain handling %d", sub.RetainHandling) // [MQTT-3.8.3-5]
		}
		if err := errors.Join(
			v5Only(v, sub.NoLocal, "SUBSCRIBE no local"),
			v5Only(v, sub.RetainAsPublished, "SUBSCRIBE retain as published"),
			v5Only(v, sub.RetainHandling != 0, "SUBSCRIBE retain handling"),
		); err != nil {
			return l, err
		}
		l.remaining += 2 + len(sub.Filter) + 1
	}
	if v == V5 {
		if s.SubscriptionIdentifier > MaxRemainingLength {
			return l, malformedf("SUBSCRIBE subscription identifier %d", s.SubscriptionIdentifier)
		}
		if s.SubscriptionIdentifier != 0 {
			l.props += 1 + varintSize(int(s.SubscriptionIdentifier))
		}
		u, err := userPropertiesSize(s.UserProperties)
		if err != nil {
			return l, fmt.Errorf("SUBSCRIBE: %w", err)
		}
		l.props += u
		l.remaining += propertiesSize(l.props)
	} else if err := errors.Join(
		v5Only(v, s.SubscriptionIdentifier != 0, "SUBSCRIBE subscription identifier"),
		v5Only(v, len(s.UserProperties) > 0, "SUBSCRIBE user properties"),
	); err != nil {
		return l, err
	}
	var err error
	l.total, err = packetSize(TypeSubscribe, l.remaining)
	return l, err
}

// SubscribeSize returns the exact number of bytes AppendSubscribe appends.
func SubscribeSize(v Version, s *Subscribe) (int, error) {
	l, err := layoutSubscribe(v, s)
	if err != nil {
		return 0, err
	}
	return l.total, nil
}

// AppendSubscribe validates s and appends its encoding to dst.
func AppendSubscribe(dst []byte, v Version, s *Subscribe) ([]byte, error) {
	l, err := layoutSubscribe(v, s)
	if err != nil {
		return dst, err
	}
	dst = append(dst, byte(TypeSubscribe)<<4|TypeSubscribe.fixedFlags())
	dst = appendVarint(dst, l.remaining)
	dst = appendUint16(dst, s.PacketID)
	if v == V5 {
		dst = appendVarint(dst, l.props)
		if s.SubscriptionIdentifier != 0 {
			dst = appendVarint(append(dst, propSubscriptionID), int(s.SubscriptionIdentifier))
		}
		dst = appendUserProperties(dst, s.UserProperties)
	}
	for i := range s.Subscriptions {
		sub := &s.Subscriptions[i]
		opts := sub.QoS | sub.RetainHandling<<4
		if sub.NoLocal {
			opts |= 0x04
		}
		if sub.RetainAsPublished {
			opts |= 0x08
		}
		dst = appendString(dst, sub.Filter)
		dst = append(dst, opts)
	}
	return dst, nil
}

func decodeSubscribe(s *Subscribe, v Version, body []byte) error {
	ps := parser{b: body}
	s.PacketID = ps.u16("SUBSCRIBE packet identifier")
	if v == V5 {
		r := readProperties(&ps, propsSubscribe, "SUBSCRIBE")
		for pr, ok := r.next(); ok; pr, ok = r.next() {
			switch pr.id {
			case propSubscriptionID:
				s.SubscriptionIdentifier = r.nonZero(pr) // [MQTT-3.8.2.1.2]
			case propUserProperty:
				s.UserProperties = appendUserProperty(s.UserProperties, pr)
			}
		}
		if err := r.err(); err != nil {
			return err
		}
	}
	for ps.err == nil && ps.remaining() > 0 {
		filter := ps.utf8("SUBSCRIBE topic filter")
		opts := ps.u8("SUBSCRIBE options")
		if ps.err != nil {
			break
		}
		sub := Subscription{Filter: string(filter), QoS: opts & 0x03}
		if err := ValidateTopicFilter(sub.Filter); err != nil {
			return fmt.Errorf("%w: SUBSCRIBE: %w", ErrMalformedPacket, err)
		}
		if sub.QoS > 2 {
			return fmt.Errorf("%w: SUBSCRIBE: %w", ErrMalformedPacket, ErrInvalidQoS) // [MQTT-3.8.3-4]
		}
		if v == V5 {
			sub.NoLocal = opts&0x04 != 0
			sub.RetainAsPublished = opts&0x08 != 0
			sub.RetainHandling = opts >> 4 & 0x03
			if opts&0xC0 != 0 || sub.RetainHandling > 2 {
				return malformedf("SUBSCRIBE options 0x%02X", opts) // [MQTT-3.8.3-5]
			}
		} else if opts&0xFC != 0 {
			return malformedf("SUBSCRIBE reserved option bits 0x%02X", opts) // [MQTT-3.8.3-4]
		}
		s.Subscriptions = append(s.Subscriptions, sub)
	}
	if ps.err != nil {
		return ps.err
	}
	if s.PacketID == 0 {
		return fmt.Errorf("%w: SUBSCRIBE: %w", ErrMalformedPacket, ErrPacketIDZero)
	}
	if len(s.Subscriptions) == 0 {
		return malformedf("SUBSCRIBE without topic filters") // [MQTT-3.8.3-3]
	}
	return nil
}

// Unsubscribe is an UNSUBSCRIBE packet.
type Unsubscribe struct {
	PacketID       uint16
	Filters        []string
	UserProperties []UserProperty // MQTT 5 only
}

type unsubscribeLayout struct{ remaining, props, total int }

func layoutUnsubscribe(v Version, u *Unsubscribe) (unsubscribeLayout, error) {
	var l unsubscribeLayout
	if err := checkVersion(v); err != nil {
		return l, fmt.Errorf("UNSUBSCRIBE: %w", err)
	}
	if u.PacketID == 0 {
		return l, fmt.Errorf("UNSUBSCRIBE: %w", ErrPacketIDZero)
	}
	if len(u.Filters) == 0 {
		return l, malformedf("UNSUBSCRIBE without topic filters") // [MQTT-3.10.3-2]
	}
	l.remaining = 2
	for _, f := range u.Filters {
		if err := ValidateTopicFilter(f); err != nil {
			return l, fmt.Errorf("UNSUBSCRIBE: %w", err)
		}
		l.remaining += 2 + len(f)
	}
	if v == V5 {
		n, err := userPropertiesSize(u.UserProperties)
		if err != nil {
			return l, fmt.Errorf("UNSUBSCRIBE: %w", err)
		}
		l.props = n
		l.remaining += propertiesSize(n)
	} else if err := v5Only(v, len(u.UserProperties) > 0, "UNSUBSCRIBE user properties"); err != nil {
		return l, err
	}
	var err error
	l.total, err = packetSize(TypeUnsubscribe, l.remaining)
	return l, err
}

// UnsubscribeSize returns the exact number of bytes AppendUnsubscribe appends.
func UnsubscribeSize(v Version, u *Unsubscribe) (int, error) {
	l, err := layoutUnsubscribe(v, u)
	if err != nil {
		return 0, err
	}
	return l.total, nil
}

// AppendUnsubscribe validates u and appends its encoding to dst.
func AppendUnsubscribe(dst []byte, v Version, u *Unsubscribe) ([]byte, error) {
	l, err := layoutUnsubscribe(v, u)
	if err != nil {
		return dst, err
	}
	dst = append(dst, byte(TypeUnsubscribe)<<4|TypeUnsubscribe.fixedFlags())
	dst = appendVarint(dst, l.remaining)
	dst = appendUint16(dst, u.PacketID)
	if v == V5 {
		dst = appendVarint(dst, l.props)
		dst = appendUserProperties(dst, u.UserProperties)
	}
	for _, f := range u.Filters {
		dst = appendString(dst, f)
	}
	return dst, nil
}

func decodeUnsubscribe(u *Unsubscribe, v Version, body []byte) error {
	ps := parser{b: body}
	u.PacketID = ps.u16("UNSUBSCRIBE packet identifier")
	if v == V5 {
		r := readProperties(&ps, propsUnsubscribe, "UNSUBSCRIBE")
		for pr, ok := r.next(); ok; pr, ok = r.next() {
			u.UserProperties = appendUserProperty(u.UserProperties, pr)
		}
		if err := r.err(); err != nil {
			return err
		}
	}
	for ps.err == nil && ps.remaining() > 0 {
		filter := ps.utf8("UNSUBSCRIBE topic filter")
		if ps.err != nil {
			break
		}
		f := string(filter)
		if err := ValidateTopicFilter(f); err != nil {
			return fmt.Errorf("%w: UNSUBSCRIBE: %w", ErrMalformedPacket, err)
		}
		u.Filters = append(u.Filters, f)
	}
	if ps.err != nil {
		return ps.err
	}
	if u.PacketID == 0 {
		return fmt.Errorf("%w: UNSUBSCRIBE: %w", ErrMalformedPacket, ErrPacketIDZero)
	}
	if len(u.Filters) == 0 {
		return malformedf("UNSUBSCRIBE without topic filters") // [MQTT-3.10.3-2]
	}
	return nil
}
