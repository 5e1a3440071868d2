package codec

import (
	"errors"
	"fmt"
)

// Will is the message the broker publishes when the client vanishes
// without a DISCONNECT.
type Will struct {
	Topic   string
	Payload []byte
	QoS     byte
	Retain  bool

	// MQTT 5 only; zero values are absent.
	DelayInterval    uint32 // seconds
	HasMessageExpiry bool
	MessageExpiry    uint32 // seconds
	HasPayloadFormat bool
	PayloadFormat    byte
	ContentType      string
	ResponseTopic    string
	CorrelationData  []byte
	UserProperties   []UserProperty
}

// Connect is a CONNECT packet. The MQTT 5 fields are refused with
// ErrPropertyNotAllowed when Version is 3.1 or 3.1.1; zero means absent.
type Connect struct {
	Version     Version
	ClientID    string
	CleanStart  bool // "clean session" in 3.1/3.1.1
	KeepAlive   uint16
	HasUsername bool
	Username    string
	HasPassword bool
	Password    []byte
	Will        *Will

	// MQTT 5 only.
	SessionExpiryInterval uint32
	ReceiveMaximum        uint16
	MaximumPacketSize     uint32
	TopicAliasMaximum     uint16
	UserProperties        []UserProperty
}

// CONNECT flag bits [MQTT-3.1.2].
const (
	connectFlagReserved   = 0x01
	connectFlagClean      = 0x02
	connectFlagWill       = 0x04
	connectFlagWillQoS    = 0x18
	connectFlagWillRetain = 0x20
	connectFlagPassword   = 0x40
	connectFlagUsername   = 0x80
)

type connectLayout struct {
	remaining int
	props     int
	willProps int
	total     int
}

func layoutConnect(c *Connect) (connectLayout, error) {
	var l connectLayout
	v := c.Version
	if err := checkVersion(v); err != nil {
		return l, fmt.Errorf("CONNECT: %w", err)
	}
	l.remaining = 2 + len(v.protocolName()) + 1 + 1 + 2
	id, err := checkString("CONNECT client identifier", c.ClientID)
	if err != nil {
		return l, err
	}
	switch {
	case v == V31 && c.ClientID == "":
		return l, malformedf("CONNECT: MQTT 3.1 needs a client identifier")
	case v == V311 && c.ClientID == "" && !c.CleanStart:
		return l, malformedf("CONNECT: empty client identifier needs clean session") // [MQTT-3.1.3-7]
	}
	l.remaining += id
	if c.Will != nil {
		n, props, err := willSize(v, c.Will)
		if err != nil {
			return l, err
		}
		l.remaining += n
		l.willProps = props
	}
	if c.HasUsername {
		n, err := checkString("CONNECT user name", c.Username)
		if err != nil {
			return l, err
		}
		l.remaining += n
	} else if c.Username != "" {
		return l, malformedf("CONNECT: user name set without HasUsername")
	}
	if c.HasPassword {
		if !c.HasUsername && v != V5 {
			return l, malformedf("CONNECT: password without user name in MQTT %s", v) // [MQTT-3.1.2-22]
		}
		n, err := checkBinary("CONNECT password", c.Password)
		if err != nil {
			return l, err
		}
		l.remaining += n
	} else if len(c.Password) > 0 {
		return l, malformedf("CONNECT: password set without HasPassword")
	}
	if v == V5 {
		n := 0
		if c.SessionExpiryInterval != 0 {
			n += 5
		}
		if c.ReceiveMaximum != 0 {
			n += 3
		}
		if c.MaximumPacketSize != 0 {
			n += 5
		}
		if c.TopicAliasMaximum != 0 {
			n += 3
		}
		u, err := userPropertiesSize(c.UserProperties)
		if err != nil {
			return l, fmt.Errorf("CONNECT: %w", err)
		}
		l.props = n + u
		l.remaining += propertiesSize(l.props)
	} else if err := errors.Join(
		v5Only(v, c.SessionExpiryInterval != 0, "CONNECT session expiry interval"),
		v5Only(v, c.ReceiveMaximum != 0, "CONNECT receive maximum"),
		v5Only(v, c.MaximumPacketSize != 0, "CONNECT maximum packet size"),
		v5Only(v, c.TopicAliasMaximum != 0, "CONNECT topic alias maximum"),
		v5Only(v, len(c.UserProperties) > 0, "CONNECT user properties"),
	); err != nil {
		return l, err
	}
	l.total, err = packetSize(TypeConnect, l.remaining)
	return l, err
}

// willSize validates w and returns its encoded size in the CONNECT payload
// and, for MQTT 5, the length of its properties block content.
func willSize(v Version, w *Will) (size, props int, err error) {
	if err := checkQoS("will QoS", w.QoS); err != nil {
		return 0, 0, err
	}
	if err := ValidateTopicName(w.Topic); err != nil {
		return 0, 0, fmt.Errorf("will: %w", err)
	}
	payload, err := checkBinary("will payload", w.Payload)
	if err != nil {
		return 0, 0, err
	}
	size = 2 + len(w.Topic) + payload
	if v != V5 {
		return size, 0, errors.Join(
			v5Only(v, w.DelayInterval != 0, "will delay interval"),
			v5Only(v, w.HasMessageExpiry, "will message expiry"),
			v5Only(v, w.HasPayloadFormat, "will payload format"),
			v5Only(v, w.ContentType != "", "will content type"),
			v5Only(v, w.ResponseTopic != "", "will response topic"),
			v5Only(v, len(w.CorrelationData) > 0, "will correlation data"),
			v5Only(v, len(w.UserProperties) > 0, "will user properties"),
		)
	}
	if w.DelayInterval != 0 {
		props += 5
	}
	if w.HasMessageExpiry {
		props += 5
	}
	if w.HasPayloadFormat {
		if w.PayloadFormat > 1 {
			return 0, 0, malformedf("will payload format %d, want 0 or 1", w.PayloadFormat)
		}
		props += 2
	}
	if w.ContentType != "" {
		n, err := checkString("will content type", w.ContentType)
		if err != nil {
			return 0, 0, err
		}
		props += 1 + n
	}
	if w.ResponseTopic != "" {
		if err := ValidateTopicName(w.ResponseTopic); err != nil {
			return 0, 0, fmt.Errorf("will response topic: %w", err)
		}
		props += 1 + 2 + len(w.ResponseTopic)
	}
	if len(w.CorrelationData) > 0 {
		n, err := checkBinary("will correlation data", w.CorrelationData)
		if err != nil {
			return 0, 0, err
		}
		props += 1 + n
	}
	u, err := userPropertiesSize(w.UserProperties)
	if err != nil {
		return 0, 0, fmt.Errorf("will: %w", err)
	}
	props += u
	return size + propertiesSize(props), props, nil
}

// ConnectSize returns the exact number of bytes AppendConnect appends for c,
// or the error it would return.
func ConnectSize(c *Connect) (int, error) {
	l, err := layoutConnect(c)
	if err != nil {
		return 0, err
	}
	return l.total, nil
}

// AppendConnect validates c and appends its encoding to dst. On error dst is
// returned unchanged.
func AppendConnect(dst []byte, c *Connect) ([]byte, error) {
	l, err := layoutConnect(c)
	if err != nil {
		return dst, err
	}
	v := c.Version
	var flags byte
	if c.CleanStart {
		flags |= connectFlagClean
	}
	if w := c.Will; w != nil {
		flags |= connectFlagWill | w.QoS<<3
		if w.Retain {
			flags |= connectFlagWillRetain
		}
	}
	if c.HasUsername {
		flags |= connectFlagUsername
	}
	if c.HasPassword {
		flags |= connectFlagPassword
	}
	dst = append(dst, byte(TypeConnect)<<4)
	dst = appendVarint(dst, l.remaining)
	dst = appendString(dst, v.protocolName())
	dst = append(dst, byte(v), flags)
	dst = appendUint16(dst, c.KeepAlive)
	if v == V5 {
		dst = appendVarint(dst, l.props)
		if c.SessionExpiryInterval != 0 {
			dst = appendPropU32(dst, propSessionExpiry, c.SessionExpiryInterval)
		}
		if c.ReceiveMaximum != 0 {
			dst = appendPropU16(dst, propReceiveMaximum, c.ReceiveMaximum)
		}
		if c.MaximumPacketSize != 0 {
			dst = appendPropU32(dst, propMaximumPacketSize, c.MaximumPacketSize)
		}
		if c.TopicAliasMaximum != 0 {
			dst = appendPropU16(dst, propTopicAliasMaximum, c.TopicAliasMaximum)
		}
		dst = appendUserProperties(dst, c.UserProperties)
	}
	dst = appendString(dst, c.ClientID)
	if w := c.Will; w != nil {
		if v == V5 {
			dst = appendWillProperties(dst, l.willProps, w)
		}
		dst = appendString(dst, w.Topic)
		dst = appendBinary(dst, w.Payload)
	}
	if c.HasUsername {
		dst = appendString(dst, c.Username)
	}
	if c.HasPassword {
		dst = appendBinary(dst, c.Password)
	}
	return dst, nil
}

func appendWillProperties(dst []byte, n int, w *Will) []byte {
	dst = appendVarint(dst, n)
	if w.DelayInterval != 0 {
		dst = appendPropU32(dst, propWillDelay, w.DelayInterval)
	}
	if w.HasMessageExpiry {
		dst = appendPropU32(dst, propMessageExpiry, w.MessageExpiry)
	}
	if w.HasPayloadFormat {
		dst = appendPropByte(dst, propPayloadFormat, w.PayloadFormat)
	}
	if w.ContentType != "" {
		dst = appendPropString(dst, propContentType, w.ContentType)
	}
	if w.ResponseTopic != "" {
		dst = appendPropString(dst, propResponseTopic, w.ResponseTopic)
	}
	if len(w.CorrelationData) > 0 {
		dst = appendPropBinary(dst, propCorrelationData, w.CorrelationData)
	}
	return appendUserProperties(dst, w.UserProperties)
}

// decodeConnect fills c from a CONNECT body. The protocol level comes from
// the packet itself, not from the decoder. Password and will payload alias
// body; will is the storage c.Will points at when a will is present.
func decodeConnect(c *Connect, will *Will, body []byte) error {
	ps := parser{b: body}
	name := ps.utf8("CONNECT protocol name")
	level := ps.u8("CONNECT protocol level")
	flags := ps.u8("CONNECT flags")
	c.KeepAlive = ps.u16("CONNECT keep alive")
	if ps.err != nil {
		return ps.err
	}
	v := Version(level)
	if !v.valid() || string(name) != v.protocolName() {
		return fmt.Errorf("CONNECT protocol %q level %d: %w", name, level, ErrUnsupportedVersion) // [MQTT-3.1.2-2]
	}
	c.Version = v
	if flags&connectFlagReserved != 0 {
		return malformedf("CONNECT reserved flag set") // [MQTT-3.1.2-3]
	}
	c.CleanStart = flags&connectFlagClean != 0
	c.HasUsername = flags&connectFlagUsername != 0
	c.HasPassword = flags&connectFlagPassword != 0
	hasWill := flags&connectFlagWill != 0
	willQoS := flags & connectFlagWillQoS >> 3
	if willQoS > 2 {
		return fmt.Errorf("%w: CONNECT will: %w", ErrMalformedPacket, ErrInvalidQoS) // [MQTT-3.1.2-14]
	}
	if !hasWill && flags&(connectFlagWillQoS|connectFlagWillRetain) != 0 {
		return malformedf("CONNECT will QoS or retain without will flag") // [MQTT-3.1.2-11] [MQTT-3.1.2-13] [MQTT-3.1.2-15]
	}
	if v != V5 && c.HasPassword && !c.HasUsername {
		return malformedf("CONNECT password flag without user name flag") // [MQTT-3.1.2-22]
	}
	if v == V5 {
		r := readProperties(&ps, propsConnect, "CONNECT")
		for pr, ok := r.next(); ok; pr, ok = r.next() {
			switch pr.id {
			case propSessionExpiry:
				c.SessionExpiryInterval = pr.num
			case propReceiveMaximum:
				c.ReceiveMaximum = uint16(r.nonZero(pr)) // [MQTT-3.1.2.11.3]
			case propMaximumPacketSize:
				c.MaximumPacketSize = r.nonZero(pr)
			case propTopicAliasMaximum:
				c.TopicAliasMaximum = uint16(pr.num)
			case propRequestProblemInfo, propRequestResponseInfo:
				r.boolean(pr)
			case propUserProperty:
				c.UserProperties = appendUserProperty(c.UserProperties, pr)
			}
		}
		if err := r.err(); err != nil {
			return err
		}
	}
	c.ClientID = string(ps.utf8("CONNECT client identifier"))
	if hasWill {
		*will = Will{QoS: willQoS, Retain: flags&connectFlagWillRetain != 0, UserProperties: will.UserProperties[:0]}
		if v == V5 {
			if err := decodeWillProperties(&ps, will); err != nil {
				return err
			}
		}
		will.Topic = string(ps.utf8("CONNECT will topic"))
		will.Payload = ps.binary("CONNECT will payload")
		c.Will = will
	}
	if c.HasUsername {
		c.Username = string(ps.utf8("CONNECT user name"))
	}
	if c.HasPassword {
		c.Password = ps.binary("CONNECT password")
	}
	ps.done("CONNECT payload")
	if ps.err != nil {
		return ps.err
	}
	if w := c.Will; w != nil {
		if err := ValidateTopicName(w.Topic); err != nil {
			return fmt.Errorf("%w: CONNECT will: %w", ErrMalformedPacket, err)
		}
		if w.ResponseTopic != "" {
			if err := ValidateTopicName(w.ResponseTopic); err != nil { // [MQTT-3.1.3-11]
				return fmt.Errorf("%w: CONNECT will response topic: %w", ErrMalformedPacket, err)
			}
		}
	}
	return nil
}

func decodeWillProperties(ps *parser, w *Will) error {
	r := readProperties(ps, propsWill, "CONNECT will")
	for pr, ok := r.next(); ok; pr, ok = r.next() {
		switch pr.id {
		case propWillDelay:
			w.DelayInterval = pr.num
		case propMessageExpiry:
			w.HasMessageExpiry = true
			w.MessageExpiry = pr.num
		case propPayloadFormat:
			w.HasPayloadFormat = true
			w.PayloadFormat = byte(pr.num)
			r.boolean(pr)
		case propContentType:
			w.ContentType = string(pr.data)
		case propResponseTopic:
			w.ResponseTopic = string(pr.data)
		case propCorrelationData:
			if len(pr.data) > 0 {
				w.CorrelationData = pr.data
			}
		case propUserProperty:
			w.UserProperties = appendUserProperty(w.UserProperties, pr)
		}
	}
	return r.err()
}
