package codec

import "fmt"

// AppendPacket appends the encoding of p, choosing the encoder by p.Type,
// so a simulated peer can echo or forge any decoded packet. For CONNECT the
// level is p.Connect.Version, not v.
func AppendPacket(dst []byte, v Version, p *Packet) ([]byte, error) {
	switch p.Type {
	case TypeConnect:
		return AppendConnect(dst, &p.Connect)
	case TypeConnack:
		return AppendConnack(dst, v, &p.Connack)
	case TypePublish:
		return AppendPublish(dst, v, &p.Publish)
	case TypePuback, TypePubrec, TypePubrel, TypePubcomp:
		return appendAckPacket(dst, v, p.Type, &p.Ack)
	case TypeSubscribe:
		return AppendSubscribe(dst, v, &p.Subscribe)
	case TypeSuback:
		return AppendSuback(dst, v, &p.Suback)
	case TypeUnsubscribe:
		return AppendUnsubscribe(dst, v, &p.Unsubscribe)
	case TypeUnsuback:
		return AppendUnsuback(dst, v, &p.Suback)
	case TypePingreq:
		return AppendPingreq(dst), nil
	case TypePingresp:
		return AppendPingresp(dst), nil
	case TypeDisconnect:
		return AppendDisconnect(dst, v, &p.Disconnect)
	case TypeAuth:
		return AppendAuth(dst, v, &p.Auth)
	}
	return dst, fmt.Errorf("encode %s: %w", p.Type, ErrMalformedPacket)
}

// appendAckPacket encodes an acknowledgement with its MQTT 5 properties,
// which AppendAck, built for the hot path, does not carry.
func appendAckPacket(dst []byte, v Version, t PacketType, a *Ack) ([]byte, error) {
	if a.ReasonString == "" && len(a.UserProperties) == 0 {
		return AppendAck(dst, v, t, a.PacketID, a.ReasonCode)
	}
	if err := checkAck(v, t, a.PacketID, a.ReasonCode); err != nil {
		return dst, err
	}
	if err := v5Only(v, true, t.String()+" properties"); err != nil {
		return dst, err
	}
	props := 0
	if a.ReasonString != "" {
		n, err := checkString(t.String()+" reason string", a.ReasonString)
		if err != nil {
			return dst, err
		}
		props += 1 + n
	}
	u, err := userPropertiesSize(a.UserProperties)
	if err != nil {
		return dst, fmt.Errorf("%s: %w", t, err)
	}
	props += u
	remaining := 3 + propertiesSize(props)
	if _, err := packetSize(t, remaining); err != nil {
		return dst, err
	}
	dst = append(dst, byte(t)<<4|t.fixedFlags())
	dst = appendVarint(dst, remaining)
	dst = append(dst, byte(a.PacketID>>8), byte(a.PacketID), a.ReasonCode)
	dst = appendVarint(dst, props)
	if a.ReasonString != "" {
		dst = appendPropString(dst, propReasonString, a.ReasonString)
	}
	return appendUserProperties(dst, a.UserProperties), nil
}
