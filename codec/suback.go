package codec

import "fmt"

// Suback is a SUBACK, or the reason codes of an MQTT 5 UNSUBACK: one code per
// topic filter of the request, in order.
type Suback struct {
	PacketID       uint16
	ReasonCodes    []byte
	ReasonString   string         // MQTT 5 only
	UserProperties []UserProperty // MQTT 5 only
}

// SUBACK return codes valid in MQTT 3.1 and 3.1.1 (MQTT 3.1.1 section 3.9.3).
func validSubackCodeV3(c byte) bool { return c <= 2 || c == 0x80 }

type subackLayout struct{ remaining, props, total int }

func layoutSuback(v Version, t PacketType, s *Suback) (subackLayout, error) {
	var l subackLayout
	if err := checkVersion(v); err != nil {
		return l, fmt.Errorf("%s: %w", t, err)
	}
	if s.PacketID == 0 {
		return l, fmt.Errorf("%s: %w", t, ErrPacketIDZero)
	}
	if v != V5 && (s.ReasonString != "" || len(s.UserProperties) > 0) {
		return l, fmt.Errorf("%s properties with MQTT %s: %w", t, v, ErrPropertyNotAllowed)
	}
	switch {
	case t == TypeUnsuback && v != V5:
		if err := v5Only(v, len(s.ReasonCodes) > 0, "UNSUBACK reason codes"); err != nil {
			return l, err
		}
		l.remaining, l.total = 2, 4
		return l, nil
	case len(s.ReasonCodes) == 0:
		return l, malformedf("%s without reason codes", t)
	}
	if v != V5 {
		for _, c := range s.ReasonCodes {
			if !validSubackCodeV3(c) {
				return l, malformedf("SUBACK return code 0x%02X in MQTT %s", c, v)
			}
		}
	}
	l.remaining = 2 + len(s.ReasonCodes)
	if v == V5 {
		if s.ReasonString != "" {
			n, err := checkString(t.String()+" reason string", s.ReasonString)
			if err != nil {
				return l, err
			}
			l.props += 1 + n
		}
		u, err := userPropertiesSize(s.UserProperties)
		if err != nil {
			return l, fmt.Errorf("%s: %w", t, err)
		}
		l.props += u
		l.remaining += propertiesSize(l.props)
	}
	var err error
	l.total, err = packetSize(t, l.remaining)
	return l, err
}

func appendSuback(dst []byte, v Version, t PacketType, s *Suback) ([]byte, error) {
	l, err := layoutSuback(v, t, s)
	if err != nil {
		return dst, err
	}
	dst = append(dst, byte(t)<<4)
	dst = appendVarint(dst, l.remaining)
	dst = appendUint16(dst, s.PacketID)
	if v == V5 {
		dst = appendVarint(dst, l.props)
		if s.ReasonString != "" {
			dst = appendPropString(dst, propReasonString, s.ReasonString)
		}
		dst = appendUserProperties(dst, s.UserProperties)
	} else if t == TypeUnsuback {
		return dst, nil
	}
	return append(dst, s.ReasonCodes...), nil
}

// SubackSize returns the exact number of bytes AppendSuback appends.
func SubackSize(v Version, s *Suback) (int, error) {
	l, err := layoutSuback(v, TypeSuback, s)
	if err != nil {
		return 0, err
	}
	return l.total, nil
}

// AppendSuback appends a SUBACK. Clients never send one; it exists for
// brokers simulated in tests.
func AppendSuback(dst []byte, v Version, s *Suback) ([]byte, error) {
	return appendSuback(dst, v, TypeSuback, s)
}

// UnsubackSize returns the exact number of bytes AppendUnsuback appends.
func UnsubackSize(v Version, s *Suback) (int, error) {
	l, err := layoutSuback(v, TypeUnsuback, s)
	if err != nil {
		return 0, err
	}
	return l.total, nil
}

// AppendUnsuback appends an UNSUBACK: only the packet identifier for 3.1 and
// 3.1.1, reason codes and properties for MQTT 5. It exists for simulated
// brokers.
func AppendUnsuback(dst []byte, v Version, s *Suback) ([]byte, error) {
	return appendSuback(dst, v, TypeUnsuback, s)
}

// decodeSuback reads a SUBACK or an UNSUBACK. The reason codes alias body.
func decodeSuback(s *Suback, v Version, t PacketType, body []byte) error {
	ps := parser{b: body}
	s.PacketID = ps.u16("acknowledgement packet identifier")
	if v == V5 {
		r := readProperties(&ps, propsAck, t.String())
		for pr, ok := r.next(); ok; pr, ok = r.next() {
			switch pr.id {
			case propReasonString:
				s.ReasonString = string(pr.data)
			case propUserProperty:
				s.UserProperties = appendUserProperty(s.UserProperties, pr)
			}
		}
		if err := r.err(); err != nil {
			return err
		}
	}
	if ps.err != nil {
		return ps.err
	}
	if s.PacketID == 0 {
		return fmt.Errorf("%w: %s: %w", ErrMalformedPacket, t, ErrPacketIDZero)
	}
	if t == TypeUnsuback && v != V5 {
		ps.done("UNSUBACK")
		return ps.err
	}
	s.ReasonCodes = ps.b[ps.off:]
	if len(s.ReasonCodes) == 0 {
		return malformedf("%s without reason codes", t)
	}
	if t == TypeSuback && v != V5 {
		for _, c := range s.ReasonCodes {
			if !validSubackCodeV3(c) {
				return malformedf("SUBACK return code 0x%02X", c) // [MQTT-3.9.3-2]
			}
		}
	}
	return nil
}
