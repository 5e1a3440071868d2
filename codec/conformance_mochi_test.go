package codec_test

// Converters between this codec's packets and mochi-mqtt's packets.Packet,
// for the conformance tests.

import (
	"bytes"
	"fmt"

	mochi "github.com/mochi-mqtt/server/v2/packets"

	"github.com/nbiot-uploader/uploader/codec"
)

func mochiDecode(v codec.Version, raw []byte) (*mochi.Packet, error) {
	var fh mochi.FixedHeader
	if err := fh.Decode(raw[0]); err != nil {
		return nil, err
	}
	rl, n, err := mochi.DecodeLength(bytes.NewReader(raw[1:]))
	if err != nil {
		return nil, err
	}
	fh.Remaining = rl
	if 1+n+rl != len(raw) {
		return nil, fmt.Errorf("length %d+%d+%d != %d", 1, n, rl, len(raw))
	}
	pk := &mochi.Packet{FixedHeader: fh, ProtocolVersion: byte(v)}
	body := raw[1+n:]
	switch fh.Type {
	case mochi.Connect:
		err = pk.ConnectDecode(body)
	case mochi.Connack:
		err = pk.ConnackDecode(body)
	case mochi.Publish:
		err = pk.PublishDecode(body)
	case mochi.Puback:
		err = pk.PubackDecode(body)
	case mochi.Pubrec:
		err = pk.PubrecDecode(body)
	case mochi.Pubrel:
		err = pk.PubrelDecode(body)
	case mochi.Pubcomp:
		err = pk.PubcompDecode(body)
	case mochi.Subscribe:
		err = pk.SubscribeDecode(body)
	case mochi.Suback:
		err = pk.SubackDecode(body)
	case mochi.Unsubscribe:
		err = pk.UnsubscribeDecode(body)
	case mochi.Unsuback:
		err = pk.UnsubackDecode(body)
	case mochi.Pingreq:
		err = pk.PingreqDecode(body)
	case mochi.Pingresp:
		err = pk.PingrespDecode(body)
	case mochi.Disconnect:
		err = pk.DisconnectDecode(body)
	case mochi.Auth:
		err = pk.AuthDecode(body)
	default:
		err = fmt.Errorf("type %d", fh.Type)
	}
	return pk, err
}

func mochiEncode(v codec.Version, pk *mochi.Packet) ([]byte, error) {
	var buf bytes.Buffer
	var err error
	switch pk.FixedHeader.Type {
	case mochi.Connect:
		err = pk.ConnectEncode(&buf)
	case mochi.Connack:
		err = pk.ConnackEncode(&buf)
	case mochi.Publish:
		err = pk.PublishEncode(&buf)
	case mochi.Puback:
		err = pk.PubackEncode(&buf)
	case mochi.Pubrec:
		err = pk.PubrecEncode(&buf)
	case mochi.Pubrel:
		err = pk.PubrelEncode(&buf)
	case mochi.Pubcomp:
		err = pk.PubcompEncode(&buf)
	case mochi.Subscribe:
		err = pk.SubscribeEncode(&buf)
	case mochi.Suback:
		err = pk.SubackEncode(&buf)
	case mochi.Unsubscribe:
		err = pk.UnsubscribeEncode(&buf)
	case mochi.Unsuback:
		err = pk.UnsubackEncode(&buf)
	case mochi.Pingreq:
		err = pk.PingreqEncode(&buf)
	case mochi.Pingresp:
		err = pk.PingrespEncode(&buf)
	case mochi.Disconnect:
		err = pk.DisconnectEncode(&buf)
	case mochi.Auth:
		err = pk.AuthEncode(&buf)
	}
	return buf.Bytes(), err
}

func fromMochiUser(u []mochi.UserProperty) []codec.UserProperty {
	var out []codec.UserProperty
	for _, p := range u {
		out = append(out, codec.UserProperty{Key: p.Key, Value: p.Val})
	}
	return out
}

func toMochiUser(u []codec.UserProperty) []mochi.UserProperty {
	var out []mochi.UserProperty
	for _, p := range u {
		out = append(out, mochi.UserProperty{Key: p.Key, Val: p.Value})
	}
	return out
}

func fromMochi(mp *mochi.Packet) codec.Packet {
	p := codec.Packet{Type: codec.PacketType(mp.FixedHeader.Type)}
	pr := &mp.Properties
	switch p.Type {
	case codec.TypeConnect:
		c := &mp.Connect
		p.Connect = codec.Connect{Version: codec.Version(mp.ProtocolVersion), ClientID: c.ClientIdentifier,
			CleanStart: c.Clean, KeepAlive: c.Keepalive, HasUsername: c.UsernameFlag, Username: string(c.Username),
			HasPassword: c.PasswordFlag, Password: c.Password,
			SessionExpiryInterval: pr.SessionExpiryInterval, ReceiveMaximum: pr.ReceiveMaximum,
			MaximumPacketSize: pr.MaximumPacketSize, TopicAliasMaximum: pr.TopicAliasMaximum,
			UserProperties: fromMochiUser(pr.User)}
		if c.WillFlag {
			wp := &c.WillProperties
			p.Connect.Will = &codec.Will{Topic: c.WillTopic, Payload: c.WillPayload, QoS: c.WillQos, Retain: c.WillRetain,
				DelayInterval: wp.WillDelayInterval, HasMessageExpiry: wp.MessageExpiryInterval > 0, MessageExpiry: wp.MessageExpiryInterval,
				HasPayloadFormat: wp.PayloadFormatFlag, PayloadFormat: wp.PayloadFormat, ContentType: wp.ContentType,
				ResponseTopic: wp.ResponseTopic, CorrelationData: wp.CorrelationData, UserProperties: fromMochiUser(wp.User)}
		}
	case codec.TypeConnack:
		p.Connack = codec.Connack{SessionPresent: mp.SessionPresent, ReasonCode: mp.ReasonCode,
			ReceiveMaximum: pr.ReceiveMaximum, HasMaximumQoS: pr.MaximumQosFlag, MaximumQoS: pr.MaximumQos,
			RetainAvailable: !pr.RetainAvailableFlag || pr.RetainAvailable == 1, MaximumPacketSize: pr.MaximumPacketSize,
			TopicAliasMaximum: pr.TopicAliasMaximum, AssignedClientID: pr.AssignedClientID,
			HasServerKeepAlive: pr.ServerKeepAliveFlag, ServerKeepAlive: pr.ServerKeepAlive, ReasonString: pr.ReasonString,
			HasSessionExpiry: pr.SessionExpiryIntervalFlag, SessionExpiryInterval: pr.SessionExpiryInterval,
			ServerReference: pr.ServerReference, UserProperties: fromMochiUser(pr.User)}
	case codec.TypePublish:
		p.Publish = codec.Publish{Topic: mp.TopicName, Payload: mp.Payload, QoS: mp.FixedHeader.Qos, Retain: mp.FixedHeader.Retain,
			Dup: mp.FixedHeader.Dup, PacketID: mp.PacketID, HasMessageExpiry: pr.MessageExpiryInterval > 0,
			MessageExpiry: pr.MessageExpiryInterval, HasPayloadFormat: pr.PayloadFormatFlag, PayloadFormat: pr.PayloadFormat,
			ContentType: pr.ContentType, ResponseTopic: pr.ResponseTopic, CorrelationData: pr.CorrelationData,
			UserProperties: fromMochiUser(pr.User)}
		if pr.TopicAliasFlag {
			p.Publish.TopicAlias = pr.TopicAlias
		}
	case codec.TypePuback, codec.TypePubrec, codec.TypePubrel, codec.TypePubcomp:
		p.Ack = codec.Ack{PacketID: mp.PacketID, ReasonCode: mp.ReasonCode, ReasonString: pr.ReasonString, UserProperties: fromMochiUser(pr.User)}
	case codec.TypeSubscribe:
		p.Subscribe = codec.Subscribe{PacketID: mp.PacketID, UserProperties: fromMochiUser(pr.User)}
		if len(pr.SubscriptionIdentifier) > 0 {
			p.Subscribe.SubscriptionIdentifier = uint32(pr.SubscriptionIdentifier[0])
		}
		for _, f := range mp.Filters {
			p.Subscribe.Subscriptions = append(p.Subscribe.Subscriptions, codec.Subscription{Filter: f.Filter, QoS: f.Qos,
				NoLocal: f.NoLocal, RetainAsPublished: f.RetainAsPublished, RetainHandling: f.RetainHandling})
		}
	case codec.TypeUnsubscribe:
		p.Unsubscribe = codec.Unsubscribe{PacketID: mp.PacketID, UserProperties: fromMochiUser(pr.User)}
		for _, f := range mp.Filters {
			p.Unsubscribe.Filters = append(p.Unsubscribe.Filters, f.Filter)
		}
	case codec.TypeSuback, codec.TypeUnsuback:
		p.Suback = codec.Suback{PacketID: mp.PacketID, ReasonCodes: mp.ReasonCodes, ReasonString: pr.ReasonString, UserProperties: fromMochiUser(pr.User)}
	case codec.TypeDisconnect:
		p.Disconnect = codec.Disconnect{ReasonCode: mp.ReasonCode, HasSessionExpiry: pr.SessionExpiryIntervalFlag,
			SessionExpiryInterval: pr.SessionExpiryInterval, ReasonString: pr.ReasonString, ServerReference: pr.ServerReference,
			UserProperties: fromMochiUser(pr.User)}
	case codec.TypeAuth:
		p.Auth = codec.Auth{ReasonCode: mp.ReasonCode, AuthMethod: pr.AuthenticationMethod, AuthData: pr.AuthenticationData,
			ReasonString: pr.ReasonString, UserProperties: fromMochiUser(pr.User)}
	}
	return p
}

func toMochi(v codec.Version, p *codec.Packet) *mochi.Packet {
	mp := &mochi.Packet{ProtocolVersion: byte(v), FixedHeader: mochi.FixedHeader{Type: byte(p.Type)},
		Mods: mochi.Mods{AllowResponseInfo: true}}
	pr := &mp.Properties
	switch p.Type {
	case codec.TypePubrel, codec.TypeSubscribe, codec.TypeUnsubscribe:
		mp.FixedHeader.Qos = 1 // mochi writes the required flags 0010 from Qos
	}
	switch p.Type {
	case codec.TypeConnect:
		c := &p.Connect
		mp.ProtocolVersion = byte(c.Version)
		mp.Connect = mochi.ConnectParams{ProtocolName: []byte(map[bool]string{true: "MQIsdp", false: "MQTT"}[c.Version == codec.V31]),
			ClientIdentifier: c.ClientID, Clean: c.CleanStart, Keepalive: c.KeepAlive, UsernameFlag: c.HasUsername,
			Username: []byte(c.Username), PasswordFlag: c.HasPassword, Password: c.Password}
		pr.SessionExpiryInterval, pr.SessionExpiryIntervalFlag = c.SessionExpiryInterval, c.SessionExpiryInterval != 0
		pr.ReceiveMaximum, pr.MaximumPacketSize, pr.TopicAliasMaximum = c.ReceiveMaximum, c.MaximumPacketSize, c.TopicAliasMaximum
		pr.User = toMochiUser(c.UserProperties)
		if w := c.Will; w != nil {
			mp.Connect.WillFlag, mp.Connect.WillTopic, mp.Connect.WillPayload = true, w.Topic, w.Payload
			mp.Connect.WillQos, mp.Connect.WillRetain = w.QoS, w.Retain
			wp := &mp.Connect.WillProperties
			wp.WillDelayInterval, wp.MessageExpiryInterval = w.DelayInterval, w.MessageExpiry
			wp.PayloadFormatFlag, wp.PayloadFormat = w.HasPayloadFormat, w.PayloadFormat
			wp.ContentType, wp.ResponseTopic, wp.CorrelationData = w.ContentType, w.ResponseTopic, w.CorrelationData
			wp.User = toMochiUser(w.UserProperties)
		}
	case codec.TypeConnack:
		c := &p.Connack
		mp.SessionPresent, mp.ReasonCode = c.SessionPresent, c.ReasonCode
		pr.ReceiveMaximum, pr.MaximumQosFlag, pr.MaximumQos = c.ReceiveMaximum, c.HasMaximumQoS, c.MaximumQoS
		pr.RetainAvailableFlag = !c.RetainAvailable
		pr.MaximumPacketSize, pr.TopicAliasMaximum, pr.AssignedClientID = c.MaximumPacketSize, c.TopicAliasMaximum, c.AssignedClientID
		pr.ServerKeepAliveFlag, pr.ServerKeepAlive, pr.ReasonString = c.HasServerKeepAlive, c.ServerKeepAlive, c.ReasonString
		pr.SessionExpiryIntervalFlag, pr.SessionExpiryInterval = c.HasSessionExpiry, c.SessionExpiryInterval
		pr.ServerReference, pr.User = c.ServerReference, toMochiUser(c.UserProperties)
	case codec.TypePublish:
		c := &p.Publish
		mp.TopicName, mp.Payload, mp.PacketID = c.Topic, c.Payload, c.PacketID
		mp.FixedHeader.Qos, mp.FixedHeader.Retain, mp.FixedHeader.Dup = c.QoS, c.Retain, c.Dup
		pr.TopicAliasFlag, pr.TopicAlias = c.TopicAlias != 0, c.TopicAlias
		pr.MessageExpiryInterval = c.MessageExpiry
		pr.PayloadFormatFlag, pr.PayloadFormat = c.HasPayloadFormat, c.PayloadFormat
		pr.ContentType, pr.ResponseTopic, pr.CorrelationData = c.ContentType, c.ResponseTopic, c.CorrelationData
		pr.User = toMochiUser(c.UserProperties)
	case codec.TypePuback, codec.TypePubrec, codec.TypePubrel, codec.TypePubcomp:
		mp.PacketID, mp.ReasonCode = p.Ack.PacketID, p.Ack.ReasonCode
		pr.ReasonString, pr.User = p.Ack.ReasonString, toMochiUser(p.Ack.UserProperties)
	case codec.TypeSubscribe:
		mp.PacketID = p.Subscribe.PacketID
		if p.Subscribe.SubscriptionIdentifier != 0 {
			pr.SubscriptionIdentifier = []int{int(p.Subscribe.SubscriptionIdentifier)}
		}
		pr.User = toMochiUser(p.Subscribe.UserProperties)
		for _, s := range p.Subscribe.Subscriptions {
			mp.Filters = append(mp.Filters, mochi.Subscription{Filter: s.Filter, Qos: s.QoS, NoLocal: s.NoLocal,
				RetainAsPublished: s.RetainAsPublished, RetainHandling: s.RetainHandling})
		}
	case codec.TypeUnsubscribe:
		mp.PacketID = p.Unsubscribe.PacketID
		pr.User = toMochiUser(p.Unsubscribe.UserProperties)
		for _, f := range p.Unsubscribe.Filters {
			mp.Filters = append(mp.Filters, mochi.Subscription{Filter: f})
		}
	case codec.TypeSuback, codec.TypeUnsuback:
		mp.PacketID, mp.ReasonCodes = p.Suback.PacketID, p.Suback.ReasonCodes
		pr.ReasonString, pr.User = p.Suback.ReasonString, toMochiUser(p.Suback.UserProperties)
	case codec.TypeDisconnect:
		d := &p.Disconnect
		mp.ReasonCode = d.ReasonCode
		pr.SessionExpiryIntervalFlag, pr.SessionExpiryInterval = d.HasSessionExpiry, d.SessionExpiryInterval
		pr.ReasonString, pr.ServerReference, pr.User = d.ReasonString, d.ServerReference, toMochiUser(d.UserProperties)
	case codec.TypeAuth:
		a := &p.Auth
		mp.ReasonCode = a.ReasonCode
		pr.AuthenticationMethod, pr.AuthenticationData = a.AuthMethod, a.AuthData
		pr.ReasonString, pr.User = a.ReasonString, toMochiUser(a.UserProperties)
	}
	return mp
}
