package codec

import (
	"errors"
	"fmt"
)

// Publish is a PUBLISH packet, sent by the client (uplink) or the broker
// (downlink). Fields marked MQTT 5 are refused with ErrPropertyNotAllowed
// when encoding for 3.1 or 3.1.1.
type Publish struct {
	Topic    string // may be empty in MQTT 5 when TopicAlias != 0
	Payload  []byte
	QoS      byte
	Retain   bool
	Dup      bool
	PacketID uint16 // required (non-zero) for QoS 1 and 2; not sent for QoS 0

	// MQTT 5 only.
	TopicAlias       uint16 // 0 = absent
	HasMessageExpiry bool
	MessageExpiry    uint32 // seconds
	HasPayloadFormat bool
	PayloadFormat    byte   // 0 unspecified bytes, 1 UTF-8 text
	ContentType      string // "" = absent
	ResponseTopic    string // "" = absent
	CorrelationData  []byte // empty = absent
	UserProperties   []UserProperty
}

// publishLayout is what both PublishSize and AppendPublish need, so the
// encoder validates and measures exactly once.
type publishLayout struct {
	remaining int
	props     int // length of the properties block content, MQTT 5 only
	total     int
}

func layoutPublish(v Version, p *Publish) (publishLayout, error) {
	var l publishLayout
	if err := checkVersion(v); err != nil {
		return l, err
	}
	if err := checkQoS("PUBLISH QoS", p.QoS); err != nil {
		return l, err
	}
	if p.QoS > 0 && p.PacketID == 0 {
		return l, fmt.Errorf("PUBLISH QoS %d: %w", p.QoS, ErrPacketIDZero) // [MQTT-2.2.1-3]
	}
	if p.QoS == 0 && p.Dup {
		return l, malformedf("PUBLISH QoS 0 with DUP set") // [MQTT-3.3.1-2]
	}
	if p.Topic != "" || v != V5 || p.TopicAlias == 0 {
		if err := ValidateTopicName(p.Topic); err != nil {
			return l, fmt.Errorf("PUBLISH: %w", err)
		}
	}
	if len(p.Payload) > MaxRemainingLength {
		// Checked first so the sums below cannot overflow a 32-bit int.
		return l, fmt.Errorf("PUBLISH payload of %d bytes: %w", len(p.Payload), ErrPacketTooLarge)
	}
	l.remaining = 2 + len(p.Topic) + len(p.Payload)
	if p.QoS > 0 {
		l.remaining += 2
	}
	if v == V5 {
		n, err := publishPropertiesSize(p)
		if err != nil {
			return l, err
		}
		l.props = n
		l.remaining += propertiesSize(n)
	} else if err := publishV5Fields(v, p); err != nil {
		return l, err
	}
	total, err := packetSize(TypePublish, l.remaining)
	if err != nil {
		return l, err
	}
	l.total = total
	return l, nil
}

func publishV5Fields(v Version, p *Publish) error {
	// One test on the hot path; the per-field errors only when one is set.
	if p.TopicAlias == 0 && !p.HasMessageExpiry && !p.HasPayloadFormat && p.ContentType == "" &&
		p.ResponseTopic == "" && len(p.CorrelationData) == 0 && len(p.UserProperties) == 0 {
		return nil
	}
	return errors.Join(
		v5Only(v, p.TopicAlias != 0, "PUBLISH topic alias"),
		v5Only(v, p.HasMessageExpiry, "PUBLISH message expiry"),
		v5Only(v, p.HasPayloadFormat, "PUBLISH payload format"),
		v5Only(v, p.ContentType != "", "PUBLISH content type"),
		v5Only(v, p.ResponseTopic != "", "PUBLISH response topic"),
		v5Only(v, len(p.CorrelationData) > 0, "PUBLISH correlation data"),
		v5Only(v, len(p.UserProperties) > 0, "PUBLISH user properties"),
	)
}

func publishPropertiesSize(p *Publish) (int, error) {
	n := 0
	if p.HasPayloadFormat {
		if p.PayloadFormat > 1 {
			return 0, malformedf("PUBLISH payload format %d, want 0 or 1", p.PayloadFormat)
		}
		n += 2
	}
	if p.HasMessageExpiry {
		n += 5
	}
	if p.TopicAlias != 0 {
		n += 3
	}
	if p.ContentType != "" {
		s, err := checkString("PUBLISH content type", p.ContentType)
		if err != nil {
			return 0, err
		}
		n += 1 + s
	}
	if p.ResponseTopic != "" {
		if err := ValidateTopicName(p.ResponseTopic); err != nil { // [MQTT-3.3.2-14]
			return 0, fmt.Errorf("PUBLISH response topic: %w", err)
		}
		n += 1 + 2 + len(p.ResponseTopic)
	}
	if len(p.CorrelationData) > 0 {
		s, err := checkBinary("PUBLISH correlation data", p.CorrelationData)
		if err != nil {
			return 0, err
		}
		n += 1 + s
	}
	u, err := userPropertiesSize(p.UserProperties)
	if err != nil {
		return 0, fmt.Errorf("PUBLISH: %w", err)
	}
	return n + u, nil
}

// PublishSize returns the exact number of bytes AppendPublish appends for p,
// or the error it would return.
func PublishSize(v Version, p *Publish) (int, error) {
	l, err := layoutPublish(v, p)
	if err != nil {
		return 0, err
	}
	return l.total, nil
}

// AppendPublish validates p and appends its encoding to dst. On error dst is
// returned unchanged.
func AppendPublish(dst []byte, v Version, p *Publish) ([]byte, error) {
	l, err := layoutPublish(v, p)
	if err != nil {
		return dst, err
	}
	header := byte(TypePublish)<<4 | p.QoS<<1
	if p.Dup {
		header |= 0x08
	}
	if p.Retain {
		header |= 0x01
	}
	dst = append(dst, header)
	dst = appendVarint(dst, l.remaining)
	dst = appendString(dst, p.Topic)
	if p.QoS > 0 {
		dst = appendUint16(dst, p.PacketID)
	}
	if v == V5 {
		dst = appendVarint(dst, l.props)
		if p.HasPayloadFormat {
			dst = appendPropByte(dst, propPayloadFormat, p.PayloadFormat)
		}
		if p.HasMessageExpiry {
			dst = appendPropU32(dst, propMessageExpiry, p.MessageExpiry)
		}
		if p.TopicAlias != 0 {
			dst = appendPropU16(dst, propTopicAlias, p.TopicAlias)
		}
		if p.ContentType != "" {
			dst = appendPropString(dst, propContentType, p.ContentType)
		}
		if p.ResponseTopic != "" {
			dst = appendPropString(dst, propResponseTopic, p.ResponseTopic)
		}
		if len(p.CorrelationData) > 0 {
			dst = appendPropBinary(dst, propCorrelationData, p.CorrelationData)
		}
		dst = appendUserProperties(dst, p.UserProperties)
	}
	return append(dst, p.Payload...), nil
}

// decodePublish fills p from a PUBLISH body. Payload and CorrelationData
// alias body; the caller resets p first.
func decodePublish(p *Publish, v Version, flags byte, body []byte) error {
	p.QoS = flags >> 1 & 0x03
	p.Dup = flags&0x08 != 0
	p.Retain = flags&0x01 != 0
	if p.QoS > 2 {
		return fmt.Errorf("%w: PUBLISH: %w", ErrMalformedPacket, ErrInvalidQoS) // [MQTT-3.3.1-4]
	}
	if p.QoS == 0 && p.Dup {
		return malformedf("PUBLISH QoS 0 with DUP set") // [MQTT-3.3.1-2]
	}
	ps := parser{b: body}
	// Read as binary so ValidateTopicName reports the topic-specific error.
	topic := ps.binary("PUBLISH topic")
	if p.QoS > 0 {
		p.PacketID = ps.u16("PUBLISH packet identifier")
	}
	if v == V5 {
		r := readProperties(&ps, propsPublish, "PUBLISH")
		for pr, ok := r.next(); ok; pr, ok = r.next() {
			switch pr.id {
			case propPayloadFormat:
				p.HasPayloadFormat = true
				p.PayloadFormat = byte(pr.num)
				r.boolean(pr)
			case propMessageExpiry:
				p.HasMessageExpiry = true
				p.MessageExpiry = pr.num
			case propTopicAlias:
				p.TopicAlias = uint16(r.nonZero(pr)) // [MQTT-3.3.2-8]
			case propContentType:
				p.ContentType = string(pr.data)
			case propResponseTopic:
				p.ResponseTopic = string(pr.data)
			case propCorrelationData:
				if len(pr.data) > 0 {
					p.CorrelationData = pr.data
				}
			case propSubscriptionID:
				r.nonZero(pr) // [MQTT-3.3.4-6]: kept out of Publish, which a client sends
			case propUserProperty:
				p.UserProperties = appendUserProperty(p.UserProperties, pr)
			}
		}
		if err := r.err(); err != nil {
			return err
		}
	}
	if ps.err != nil {
		return ps.err
	}
	p.Topic = string(topic)
	if p.Topic != "" || v != V5 || p.TopicAlias == 0 {
		if err := ValidateTopicName(p.Topic); err != nil {
			return fmt.Errorf("%w: PUBLISH: %w", ErrMalformedPacket, err)
		}
	}
	if p.ResponseTopic != "" {
		if err := ValidateTopicName(p.ResponseTopic); err != nil {
			return fmt.Errorf("%w: PUBLISH response topic: %w", ErrMalformedPacket, err)
		}
	}
	if p.QoS > 0 && p.PacketID == 0 {
		return fmt.Errorf("%w: PUBLISH: %w", ErrMalformedPacket, ErrPacketIDZero)
	}
	p.Payload = body[ps.off:]
	return nil
}
