package codec

import "fmt"

// UserProperty is an MQTT 5 name/value pair; order and repeats are kept.
type UserProperty struct{ Key, Value string }

// MQTT 5 property identifiers (MQTT 5.0 section 2.2.2.2).
const (
	propPayloadFormat        byte = 0x01
	propMessageExpiry        byte = 0x02
	propContentType          byte = 0x03
	propResponseTopic        byte = 0x08
	propCorrelationData      byte = 0x09
	propSubscriptionID       byte = 0x0B
	propSessionExpiry        byte = 0x11
	propAssignedClientID     byte = 0x12
	propServerKeepAlive      byte = 0x13
	propAuthMethod           byte = 0x15
	propAuthData             byte = 0x16
	propRequestProblemInfo   byte = 0x17
	propWillDelay            byte = 0x18
	propRequestResponseInfo  byte = 0x19
	propResponseInfo         byte = 0x1A
	propServerReference      byte = 0x1C
	propReasonString         byte = 0x1F
	propReceiveMaximum       byte = 0x21
	propTopicAliasMaximum    byte = 0x22
	propTopicAlias           byte = 0x23
	propMaximumQoS           byte = 0x24
	propRetainAvailable      byte = 0x25
	propUserProperty         byte = 0x26
	propMaximumPacketSize    byte = 0x27
	propWildcardSubAvailable byte = 0x28
	propSubIDAvailable       byte = 0x29
	propSharedSubAvailable   byte = 0x2A
	maxPropID                byte = 0x2A
)

type propKind byte

const (
	kindNone propKind = iota
	kindByte
	kindU16
	kindU32
	kindVarint
	kindString
	kindBinary
	kindPair
)

var propKinds = [maxPropID + 1]propKind{
	propPayloadFormat:        kindByte,
	propMessageExpiry:        kindU32,
	propContentType:          kindString,
	propResponseTopic:        kindString,
	propCorrelationData:      kindBinary,
	propSubscriptionID:       kindVarint,
	propSessionExpiry:        kindU32,
	propAssignedClientID:     kindString,
	propServerKeepAlive:      kindU16,
	propAuthMethod:           kindString,
	propAuthData:             kindBinary,
	propRequestProblemInfo:   kindByte,
	propWillDelay:            kindU32,
	propRequestResponseInfo:  kindByte,
	propResponseInfo:         kindString,
	propServerReference:      kindString,
	propReasonString:         kindString,
	propReceiveMaximum:       kindU16,
	propTopicAliasMaximum:    kindU16,
	propTopicAlias:           kindU16,
	propMaximumQoS:           kindByte,
	propRetainAvailable:      kindByte,
	propUserProperty:         kindPair,
	propMaximumPacketSize:    kindU32,
	propWildcardSubAvailable: kindByte,
	propSubIDAvailable:       kindByte,
	propSharedSubAvailable:   kindByte,
}

// propSet is a bitmask of property identifiers.
type propSet uint64

func setOf(ids ...byte) propSet {
	var s propSet
	for _, id := range ids {
		s |= 1 << id
	}
	return s
}

func (s propSet) has(id byte) bool { return id <= maxPropID && s&(1<<id) != 0 }

// Which properties each packet may carry (MQTT 5.0 table 2-4).
var (
	propsConnect = setOf(propSessionExpiry, propAuthMethod, propAuthData, propRequestProblemInfo,
		propRequestResponseInfo, propReceiveMaximum, propTopicAliasMaximum, propUserProperty, propMaximumPacketSize)
	propsWill = setOf(propPayloadFormat, propMessageExpiry, propContentType, propResponseTopic,
		propCorrelationData, propWillDelay, propUserProperty)
	propsConnack = setOf(propSessionExpiry, propAssignedClientID, propServerKeepAlive, propAuthMethod,
		propAuthData, propResponseInfo, propServerReference, propReasonString, propReceiveMaximum,
		propTopicAliasMaximum, propMaximumQoS, propRetainAvailable, propUserProperty, propMaximumPacketSize,
		propWildcardSubAvailable, propSubIDAvailable, propSharedSubAvailable)
	propsPublish = setOf(propPayloadFormat, propMessageExpiry, propContentType, propResponseTopic,
		propCorrelationData, propSubscriptionID, propTopicAlias, propUserProperty)
	propsAck         = setOf(propReasonString, propUserProperty)
	propsSubscribe   = setOf(propSubscriptionID, propUserProperty)
	propsUnsubscribe = setOf(propUserProperty)
	propsDisconnect  = setOf(propSessionExpiry, propServerReference, propReasonString, propUserProperty)
	propsAuth        = setOf(propAuthMethod, propAuthData, propReasonString, propUserProperty)
)

// repeatable lists the properties that may appear more than once in one
// packet; every other repeat is a protocol error.
var repeatable = setOf(propUserProperty, propSubscriptionID)

// property is one decoded property; which fields are set depends on its kind.
type property struct {
	id    byte
	num   uint32
	data  []byte // string or binary value, or the key of a user property
	value []byte // the value of a user property
}

// propReader walks one properties block.
type propReader struct {
	p       parser
	allowed propSet
	seen    propSet
	where   string
}

// readProperties takes the property length and block from p.
func readProperties(p *parser, allowed propSet, where string) propReader {
	// Constant labels: concatenating where here would allocate on every
	// packet, and Next already names the packet type in its errors.
	n := p.varint("property length")
	b := p.take(n, "properties")
	r := propReader{p: parser{b: b, err: p.err}, allowed: allowed, where: where}
	return r
}

// next decodes the next property. It returns false at the end of the block
// or on the first error, which err then reports.
func (r *propReader) next() (property, bool) {
	if r.p.err != nil || r.p.remaining() == 0 {
		return property{}, false
	}
	id := r.p.u8("property identifier")
	if id > maxPropID || propKinds[id] == kindNone {
		r.p.fail(malformedf("%s: unknown property identifier 0x%02X", r.where, id))
		return property{}, false
	}
	if !r.allowed.has(id) {
		r.p.fail(fmt.Errorf("%w: %w: property 0x%02X in %s", ErrMalformedPacket, ErrPropertyNotAllowed, id, r.where))
		return property{}, false
	}
	if r.seen.has(id) && !repeatable.has(id) {
		r.p.fail(fmt.Errorf("%w: %w: property 0x%02X repeated in %s", ErrMalformedPacket, ErrPropertyNotAllowed, id, r.where))
		return property{}, false
	}
	r.seen |= 1 << id
	pr := property{id: id}
	switch propKinds[id] {
	case kindByte:
		pr.num = uint32(r.p.u8("property value"))
	case kindU16:
		pr.num = uint32(r.p.u16("property value"))
	case kindU32:
		pr.num = r.p.u32("property value")
	case kindVarint:
		pr.num = uint32(r.p.varint("property value"))
	case kindString:
		pr.data = r.p.utf8("property value")
	case kindBinary:
		pr.data = r.p.binary("property value")
	case kindPair:
		pr.data = r.p.utf8("user property name")
		pr.value = r.p.utf8("user property value")
	}
	return pr, r.p.err == nil
}

func (r *propReader) err() error { return r.p.err }

// boolean checks a property whose only valid values are 0 and 1.
func (r *propReader) boolean(pr property) bool {
	if pr.num > 1 {
		r.p.fail(malformedf("%s: property 0x%02X has value %d, want 0 or 1", r.where, pr.id, pr.num))
	}
	return pr.num == 1
}

// nonZero checks a property for which 0 is a protocol error.
func (r *propReader) nonZero(pr property) uint32 {
	if pr.num == 0 {
		r.p.fail(malformedf("%s: property 0x%02X is 0", r.where, pr.id))
	}
	return pr.num
}

// appendUserProperties reuses dst's capacity so a decoder that keeps its
// Packet between calls does not allocate once it has seen the largest list.
func appendUserProperty(dst []UserProperty, pr property) []UserProperty {
	return append(dst, UserProperty{Key: string(pr.data), Value: string(pr.value)})
}

// Encoding helpers. Sizes include the identifier byte.

func userPropertiesSize(ups []UserProperty) (int, error) {
	n := 0
	for i := range ups {
		k, err := checkString("user property name", ups[i].Key)
		if err != nil {
			return 0, err
		}
		v, err := checkString("user property value", ups[i].Value)
		if err != nil {
			return 0, err
		}
		n += 1 + k + v
	}
	return n, nil
}

func appendUserProperties(dst []byte, ups []UserProperty) []byte {
	for i := range ups {
		dst = append(dst, propUserProperty)
		dst = appendString(dst, ups[i].Key)
		dst = appendString(dst, ups[i].Value)
	}
	return dst
}

func appendPropByte(dst []byte, id, v byte) []byte { return append(dst, id, v) }

func appendPropU16(dst []byte, id byte, v uint16) []byte { return appendUint16(append(dst, id), v) }

func appendPropU32(dst []byte, id byte, v uint32) []byte { return appendUint32(append(dst, id), v) }

func appendPropString(dst []byte, id byte, s string) []byte { return appendString(append(dst, id), s) }

func appendPropBinary(dst []byte, id byte, b []byte) []byte { return appendBinary(append(dst, id), b) }

// propertiesSize is the size of a properties block of n bytes, including
// its variable byte integer length.
func propertiesSize(n int) int { return varintSize(n) + n }

// v5Only returns ErrPropertyNotAllowed for an MQTT 5 field used at level 3 or 4.
func v5Only(v Version, set bool, what string) error {
	if set && v != V5 {
		return fmt.Errorf("%s with MQTT %s: %w", what, v, ErrPropertyNotAllowed)
	}
	return nil
}
