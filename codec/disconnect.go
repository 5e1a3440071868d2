package codec

import (
	"errors"
	"fmt"
)

// Disconnect is a DISCONNECT packet. Every field is MQTT 5 only; with 3.1 and
// 3.1.1 the packet is the two bytes E0 00 and a non-zero field is
// ErrPropertyNotAllowed.
type Disconnect struct {
	ReasonCode            byte
	HasSessionExpiry      bool
	SessionExpiryInterval uint32
	ReasonString          string
	ServerReference       string
	UserProperties        []UserProperty
}

type disconnectLayout struct{ remaining, props, total int }

func layoutDisconnect(v Version, d *Disconnect) (disconnectLayout, error) {
	var l disconnectLayout
	if err := checkVersion(v); err != nil {
		return l, fmt.Errorf("DISCONNECT: %w", err)
	}
	if d == nil {
		l.total = 2
		return l, nil
	}
	if v != V5 {
		l.total = 2
		return l, errors.Join(
			v5Only(v, d.ReasonCode != 0, "DISCONNECT reason code"),
			v5Only(v, d.HasSessionExpiry, "DISCONNECT session expiry interval"),
			v5Only(v, d.ReasonString != "", "DISCONNECT reason string"),
			v5Only(v, d.ServerReference != "", "DISCONNECT server reference"),
			v5Only(v, len(d.UserProperties) > 0, "DISCONNECT user properties"),
		)
	}
	if d.HasSessionExpiry {
		l.props += 5
	}
	for _, s := range [...]struct{ field, value string }{
		{"DISCONNECT reason string", d.ReasonString},
		{"DISCONNECT server reference", d.ServerReference},
	} {
		if s.value == "" {
			continue
		}
		n, err := checkString(s.field, s.value)
		if err != nil {
			return l, err
		}
		l.props += 1 + n
	}
	u, err := userPropertiesSize(d.UserProperties)
	if err != nil {
		return l, fmt.Errorf("DISCONNECT: %w", err)
	}
	l.props += u
	if l.props > 0 || d.ReasonCode != 0 {
		// The spec lets a reason code stand without a property length
		// (MQTT 5 section 3.14.2.2.1), but some brokers (mochi-mqtt 2.7)
		// then ignore the reason code, losing e.g. "disconnect with will".
		// One byte buys the form every implementation reads.
		l.remaining = 1 + propertiesSize(l.props)
	}
	l.total, err = packetSize(TypeDisconnect, l.remaining)
	return l, err
}

// DisconnectSize returns the exact number of bytes AppendDisconnect appends;
// d may be nil.
func DisconnectSize(v Version, d *Disconnect) (int, error) {
	l, err := layoutDisconnect(v, d)
	if err != nil {
		return 0, err
	}
	return l.total, nil
}

// AppendDisconnect appends a DISCONNECT; d may be nil for a normal
// disconnection. For MQTT 5 the reason code and properties are written only
// when present, so a normal disconnection is two bytes at every level; a
// reason code is always followed by a property length.
func AppendDisconnect(dst []byte, v Version, d *Disconnect) ([]byte, error) {
	l, err := layoutDisconnect(v, d)
	if err != nil {
		return dst, err
	}
	dst = append(dst, byte(TypeDisconnect)<<4)
	dst = appendVarint(dst, l.remaining)
	if l.remaining == 0 {
		return dst, nil
	}
	dst = append(dst, d.ReasonCode)
	dst = appendVarint(dst, l.props)
	if d.HasSessionExpiry {
		dst = appendPropU32(dst, propSessionExpiry, d.SessionExpiryInterval)
	}
	if d.ReasonString != "" {
		dst = appendPropString(dst, propReasonString, d.ReasonString)
	}
	if d.ServerReference != "" {
		dst = appendPropString(dst, propServerReference, d.ServerReference)
	}
	return appendUserProperties(dst, d.UserProperties), nil
}

func decodeDisconnect(d *Disconnect, v Version, body []byte) error {
	ps := parser{b: body}
	if v == V5 && ps.remaining() > 0 {
		d.ReasonCode = ps.u8("DISCONNECT reason code")
		if ps.remaining() > 0 {
			r := readProperties(&ps, propsDisconnect, "DISCONNECT")
			for pr, ok := r.next(); ok; pr, ok = r.next() {
				switch pr.id {
				case propSessionExpiry:
					d.HasSessionExpiry = true
					d.SessionExpiryInterval = pr.num
				case propReasonString:
					d.ReasonString = string(pr.data)
				case propServerReference:
					d.ServerReference = string(pr.data)
				case propUserProperty:
					d.UserProperties = appendUserProperty(d.UserProperties, pr)
				}
			}
			if err := r.err(); err != nil {
				return err
			}
		}
	}
	ps.done("DISCONNECT") // [MQTT-3.14.1-1] for 3.1.1: no variable header
	return ps.err
}
