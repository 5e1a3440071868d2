package codec

import (
	"errors"
	"fmt"
)

// Connack is a CONNACK packet. For MQTT 5, absent properties keep the
// defaults the spec gives them.
type Connack struct {
	SessionPresent     bool
	ReasonCode         byte   // 3.1/3.1.1 return code 0-5, MQTT 5 reason code
	ReceiveMaximum     uint16 // 0 = absent (means 65535)
	HasMaximumQoS      bool
	MaximumQoS         byte
	RetainAvailable    bool   // true when absent
	MaximumPacketSize  uint32 // 0 = absent (no limit)
	TopicAliasMaximum  uint16 // 0 = absent = no aliases
	AssignedClientID   string
	HasServerKeepAlive bool
	ServerKeepAlive    uint16
	ReasonString       string

	// Less common MQTT 5 properties.
	HasSessionExpiry      bool
	SessionExpiryInterval uint32
	ServerReference       string
	UserProperties        []UserProperty
}

// Err returns nil when the connection was accepted, else a *ConnackError.
func (c *Connack) Err(v Version) error {
	if c.ReasonCode == 0 {
		return nil
	}
	return &ConnackError{Version: v, Code: c.ReasonCode, ReasonString: c.ReasonString}
}

// ConnackError is a CONNACK that refused the connection.
type ConnackError struct {
	Version      Version
	Code         byte
	ReasonString string // MQTT 5 reason string property, if the broker sent one
}

// Error returns "connection refused: " and the specification's name for the
// code. A 3.1.1-style return code (1-5) under MQTT 5, which a broker that does
// not speak MQTT 5 sends, is named as a return code.
func (e *ConnackError) Error() string {
	var text string
	if e.Version == V5 && (e.Code >= 0x80 || e.Code == 0) {
		text = ReasonCodeText(e.Code)
	} else {
		text = returnCodeText(e.Code)
	}
	if e.ReasonString != "" {
		return fmt.Sprintf("connection refused: %s: %q", text, e.ReasonString)
	}
	return "connection refused: " + text
}

// Unwrap returns ErrConnectionRefused.
func (e *ConnackError) Unwrap() error { return ErrConnectionRefused }

type connackLayout struct {
	remaining, props, total int
}

func layoutConnack(v Version, c *Connack) (connackLayout, error) {
	var l connackLayout
	if err := checkVersion(v); err != nil {
		return l, fmt.Errorf("CONNACK: %w", err)
	}
	if v != V5 {
		err := errors.Join(
			v5Only(v, c.ReceiveMaximum != 0, "CONNACK receive maximum"),
			v5Only(v, c.HasMaximumQoS, "CONNACK maximum QoS"),
			v5Only(v, c.MaximumPacketSize != 0, "CONNACK maximum packet size"),
			v5Only(v, c.TopicAliasMaximum != 0, "CONNACK topic alias maximum"),
			v5Only(v, c.AssignedClientID != "", "CONNACK assigned client identifier"),
			v5Only(v, c.HasServerKeepAlive, "CONNACK server keep alive"),
			v5Only(v, c.ReasonString != "", "CONNACK reason string"),
			v5Only(v, c.HasSessionExpiry, "CONNACK session expiry interval"),
			v5Only(v, c.ServerReference != "", "CONNACK server reference"),
			v5Only(v, len(c.UserProperties) > 0, "CONNACK user properties"),
		)
		l.remaining, l.total = 2, 4
		return l, err
	}
	n := 0
	if c.HasSessionExpiry {
		n += 5
	}
	if c.ReceiveMaximum != 0 {
		n += 3
	}
	if c.HasMaximumQoS {
		if c.MaximumQoS > 1 {
			return l, malformedf("CONNACK maximum QoS %d, want 0 or 1", c.MaximumQoS)
		}
		n += 2
	}
	if !c.RetainAvailable {
		n += 2
	}
	if c.MaximumPacketSize != 0 {
		n += 5
	}
	if c.TopicAliasMaximum != 0 {
		n += 3
	}
	if c.HasServerKeepAlive {
		n += 3
	}
	for _, s := range [...]struct{ field, value string }{
		{"CONNACK assigned client identifier", c.AssignedClientID},
		{"CONNACK reason string", c.ReasonString},
		{"CONNACK server reference", c.ServerReference},
	} {
		if s.value == "" {
			continue
		}
		size, err := checkString(s.field, s.value)
		if err != nil {
			return l, err
		}
		n += 1 + size
	}
	u, err := userPropertiesSize(c.UserProperties)
	if err != nil {
		return l, fmt.Errorf("CONNACK: %w", err)
	}
	l.props = n + u
	l.remaining = 2 + propertiesSize(l.props)
	l.total, err = packetSize(TypeConnack, l.remaining)
	return l, err
}

// ConnackSize returns the exact number of bytes AppendConnack appends.
func ConnackSize(v Version, c *Connack) (int, error) {
	l, err := layoutConnack(v, c)
	if err != nil {
		return 0, err
	}
	return l.total, nil
}

// AppendConnack appends a CONNACK. Clients never send one; it exists for
// brokers simulated in tests. For MQTT 5 a false RetainAvailable is written
// as Retain Available 0; 3.1 and 3.1.1 cannot express it and ignore it.
func AppendConnack(dst []byte, v Version, c *Connack) ([]byte, error) {
	l, err := layoutConnack(v, c)
	if err != nil {
		return dst, err
	}
	var flags byte
	if c.SessionPresent && v != V31 {
		flags = 0x01
	}
	dst = append(dst, byte(TypeConnack)<<4)
	dst = appendVarint(dst, l.remaining)
	dst = append(dst, flags, c.ReasonCode)
	if v != V5 {
		return dst, nil
	}
	dst = appendVarint(dst, l.props)
	if c.HasSessionExpiry {
		dst = appendPropU32(dst, propSessionExpiry, c.SessionExpiryInterval)
	}
	if c.ReceiveMaximum != 0 {
		dst = appendPropU16(dst, propReceiveMaximum, c.ReceiveMaximum)
	}
	if c.HasMaximumQoS {
		dst = appendPropByte(dst, propMaximumQoS, c.MaximumQoS)
	}
	if !c.RetainAvailable {
		dst = appendPropByte(dst, propRetainAvailable, 0)
	}
	if c.MaximumPacketSize != 0 {
		dst = appendPropU32(dst, propMaximumPacketSize, c.MaximumPacketSize)
	}
	if c.AssignedClientID != "" {
		dst = appendPropString(dst, propAssignedClientID, c.AssignedClientID)
	}
	if c.TopicAliasMaximum != 0 {
		dst = appendPropU16(dst, propTopicAliasMaximum, c.TopicAliasMaximum)
	}
	if c.ReasonString != "" {
		dst = appendPropString(dst, propReasonString, c.ReasonString)
	}
	if c.HasServerKeepAlive {
		dst = appendPropU16(dst, propServerKeepAlive, c.ServerKeepAlive)
	}
	if c.ServerReference != "" {
		dst = appendPropString(dst, propServerReference, c.ServerReference)
	}
	return appendUserProperties(dst, c.UserProperties), nil
}

// decodeConnack fills c from a CONNACK body; the caller resets c first.
//
// An MQTT 5 CONNACK of only two bytes is accepted: a broker that does not
// speak MQTT 5 refuses a v5 CONNECT that way, and reading its return code
// tells the operator why.
func decodeConnack(c *Connack, v Version, body []byte) error {
	ps := parser{b: body}
	flags := ps.u8("CONNACK flags")
	c.ReasonCode = ps.u8("CONNACK reason code")
	c.RetainAvailable = true
	if ps.err != nil {
		return ps.err
	}
	if v != V31 {
		if flags&0xFE != 0 {
			return malformedf("CONNACK reserved flags 0x%02X", flags) // [MQTT-3.2.2-1]
		}
		c.SessionPresent = flags&0x01 != 0
	}
	if v == V5 && ps.remaining() > 0 {
		r := readProperties(&ps, propsConnack, "CONNACK")
		for pr, ok := r.next(); ok; pr, ok = r.next() {
			switch pr.id {
			case propSessionExpiry:
				c.HasSessionExpiry = true
				c.SessionExpiryInterval = pr.num
			case propReceiveMaximum:
				c.ReceiveMaximum = uint16(r.nonZero(pr)) // [MQTT-3.2.2.3.3]
			case propMaximumQoS:
				c.HasMaximumQoS = true
				c.MaximumQoS = byte(pr.num)
				r.boolean(pr)
			case propRetainAvailable:
				c.RetainAvailable = r.boolean(pr)
			case propMaximumPacketSize:
				c.MaximumPacketSize = r.nonZero(pr)
			case propAssignedClientID:
				c.AssignedClientID = string(pr.data)
			case propTopicAliasMaximum:
				c.TopicAliasMaximum = uint16(pr.num)
			case propReasonString:
				c.ReasonString = string(pr.data)
			case propServerKeepAlive:
				c.HasServerKeepAlive = true
				c.ServerKeepAlive = uint16(pr.num)
			case propServerReference:
				c.ServerReference = string(pr.data)
			case propWildcardSubAvailable, propSubIDAvailable, propSharedSubAvailable:
				r.boolean(pr)
			case propUserProperty:
				c.UserProperties = appendUserProperty(c.UserProperties, pr)
			}
		}
		if err := r.err(); err != nil {
			return err
		}
	}
	ps.done("CONNACK")
	return ps.err
}
