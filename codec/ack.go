package codec

import "fmt"

// Ack is a PUBACK, PUBREC, PUBREL or PUBCOMP, or the packet identifier of an
// UNSUBACK.
type Ack struct {
	PacketID       uint16
	ReasonCode     byte // MQTT 5; 0 when absent
	ReasonString   string
	UserProperties []UserProperty
}

func isAckType(t PacketType) bool {
	return t == TypePuback || t == TypePubrec || t == TypePubrel || t == TypePubcomp
}

func checkAck(v Version, t PacketType, id uint16, reason byte) error {
	if err := checkVersion(v); err != nil {
		return err
	}
	if !isAckType(t) {
		return fmt.Errorf("%s is not an acknowledgement: %w", t, ErrMalformedPacket)
	}
	if id == 0 {
		return fmt.Errorf("%s: %w", t, ErrPacketIDZero) // [MQTT-2.2.1-3]
	}
	if reason != 0 && v != V5 {
		return fmt.Errorf("%s reason code with MQTT %s: %w", t, v, ErrPropertyNotAllowed)
	}
	return nil
}

// AckSize returns the exact size of the acknowledgement AppendAck appends:
// 4 bytes, or 5 for MQTT 5 with a non-zero reason code.
func AckSize(v Version, t PacketType, id uint16, reason byte) (int, error) {
	if err := checkAck(v, t, id, reason); err != nil {
		return 0, err
	}
	if reason != 0 {
		return 5, nil
	}
	return 4, nil
}

// AppendAck appends a PUBACK, PUBREC, PUBREL or PUBCOMP. The reason code is
// written only for MQTT 5 and only when non-zero; the property length is
// then omitted, as MQTT 5 section 3.4.2.1 allows. A non-zero reason with
// 3.1 or 3.1.1 is ErrPropertyNotAllowed.
func AppendAck(dst []byte, v Version, t PacketType, id uint16, reason byte) ([]byte, error) {
	if err := checkAck(v, t, id, reason); err != nil {
		return dst, err
	}
	header := byte(t)<<4 | t.fixedFlags()
	if reason != 0 {
		return append(dst, header, 3, byte(id>>8), byte(id), reason), nil
	}
	return append(dst, header, 2, byte(id>>8), byte(id)), nil
}

// decodeAck fills a from the body of an acknowledgement with a packet
// identifier, an optional reason code and optional properties: PUBACK,
// PUBREC, PUBREL, PUBCOMP. The caller resets a first.
func decodeAck(a *Ack, v Version, t PacketType, body []byte) error {
	ps := parser{b: body}
	a.PacketID = ps.u16("acknowledgement packet identifier")
	if v == V5 && ps.remaining() > 0 {
		// Shorter forms omit the reason code and property length
		// (MQTT 5 section 3.4.2.1).
		a.ReasonCode = ps.u8("acknowledgement reason code")
		if ps.remaining() > 0 {
			r := readProperties(&ps, propsAck, t.String())
			for pr, ok := r.next(); ok; pr, ok = r.next() {
				switch pr.id {
				case propReasonString:
					a.ReasonString = string(pr.data)
				case propUserProperty:
					a.UserProperties = appendUserProperty(a.UserProperties, pr)
				}
			}
			if err := r.err(); err != nil {
				return err
			}
		}
	}
	ps.done(t.String())
	if ps.err != nil {
		return ps.err
	}
	if a.PacketID == 0 {
		return fmt.Errorf("%w: %s: %w", ErrMalformedPacket, t, ErrPacketIDZero)
	}
	return nil
}
