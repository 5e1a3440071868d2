package codec_test

// Converters between this codec's packets and paho.golang's packets, for the
// conformance tests.

import (
	"io"

	paho "github.com/eclipse/paho.golang/packets"

	"github.com/nbiot-uploader/uploader/codec"
)

func fromPahoUser(u []paho.User) []codec.UserProperty {
	var out []codec.UserProperty
	for _, p := range u {
		out = append(out, codec.UserProperty{Key: p.Key, Value: p.Value})
	}
	return out
}

func toPahoUser(u []codec.UserProperty) []paho.User {
	var out []paho.User
	for _, p := range u {
		out = append(out, paho.User{Key: p.Key, Value: p.Value})
	}
	return out
}

func deref[T any](p *T) (T, bool) {
	if p == nil {
		var zero T
		return zero, false
	}
	return *p, true
}

func ptrIf[T any](ok bool, v T) *T {
	if !ok {
		return nil
	}
	return &v
}

func fromPaho(cp *paho.ControlPacket) codec.Packet {
	p := codec.Packet{Type: codec.PacketType(cp.Type)}
	switch c := cp.Content.(type) {
	case *paho.Connect:
		pr := c.Properties
		p.Connect = codec.Connect{Version: codec.Version(c.ProtocolVersion), ClientID: c.ClientID, CleanStart: c.CleanStart,
			KeepAlive: c.KeepAlive, HasUsername: c.UsernameFlag, Username: c.Username, HasPassword: c.PasswordFlag,
			Password: c.Password, ReceiveMaximum: val(pr.ReceiveMaximum), MaximumPacketSize: val(pr.MaximumPacketSize),
			TopicAliasMaximum: val(pr.TopicAliasMaximum), SessionExpiryInterval: val(pr.SessionExpiryInterval),
			UserProperties: fromPahoUser(pr.User)}
		if c.WillFlag {
			wp := c.WillProperties
			w := &codec.Will{Topic: c.WillTopic, Payload: c.WillMessage, QoS: c.WillQOS, Retain: c.WillRetain}
			if wp != nil {
				w.DelayInterval = val(wp.WillDelayInterval)
				w.MessageExpiry, w.HasMessageExpiry = deref(wp.MessageExpiry)
				w.PayloadFormat, w.HasPayloadFormat = deref(wp.PayloadFormat)
				w.ContentType, w.ResponseTopic, w.CorrelationData = wp.ContentType, wp.ResponseTopic, wp.CorrelationData
				w.UserProperties = fromPahoUser(wp.User)
			}
			p.Connect.Will = w
		}
	case *paho.Connack:
		pr := c.Properties
		p.Connack = codec.Connack{SessionPresent: c.SessionPresent, ReasonCode: c.ReasonCode,
			ReceiveMaximum: val(pr.ReceiveMaximum), MaximumPacketSize: val(pr.MaximumPacketSize),
			TopicAliasMaximum: val(pr.TopicAliasMaximum), AssignedClientID: pr.AssignedClientID, ReasonString: pr.ReasonString,
			ServerReference: pr.ServerReference, UserProperties: fromPahoUser(pr.User), RetainAvailable: true}
		p.Connack.MaximumQoS, p.Connack.HasMaximumQoS = deref(pr.MaximumQOS)
		if ra, ok := deref(pr.RetainAvailable); ok {
			p.Connack.RetainAvailable = ra == 1
		}
		p.Connack.ServerKeepAlive, p.Connack.HasServerKeepAlive = deref(pr.ServerKeepAlive)
		p.Connack.SessionExpiryInterval, p.Connack.HasSessionExpiry = deref(pr.SessionExpiryInterval)
	case *paho.Publish:
		pr := c.Properties
		p.Publish = codec.Publish{Topic: c.Topic, Payload: c.Payload, QoS: c.QoS, Retain: c.Retain, Dup: c.Duplicate,
			PacketID: c.PacketID, TopicAlias: val(pr.TopicAlias), ContentType: pr.ContentType, ResponseTopic: pr.ResponseTopic,
			CorrelationData: pr.CorrelationData, UserProperties: fromPahoUser(pr.User)}
		p.Publish.MessageExpiry, p.Publish.HasMessageExpiry = deref(pr.MessageExpiry)
		p.Publish.PayloadFormat, p.Publish.HasPayloadFormat = deref(pr.PayloadFormat)
	case *paho.Puback:
		p.Ack = codec.Ack{PacketID: c.PacketID, ReasonCode: c.ReasonCode, ReasonString: c.Properties.ReasonString, UserProperties: fromPahoUser(c.Properties.User)}
	case *paho.Pubrec:
		p.Ack = codec.Ack{PacketID: c.PacketID, ReasonCode: c.ReasonCode, ReasonString: c.Properties.ReasonString, UserProperties: fromPahoUser(c.Properties.User)}
	case *paho.Pubrel:
		p.Ack = codec.Ack{PacketID: c.PacketID, ReasonCode: c.ReasonCode, ReasonString: c.Properties.ReasonString, UserProperties: fromPahoUser(c.Properties.User)}
	case *paho.Pubcomp:
		p.Ack = codec.Ack{PacketID: c.PacketID, ReasonCode: c.ReasonCode, ReasonString: c.Properties.ReasonString, UserProperties: fromPahoUser(c.Properties.User)}
	case *paho.Subscribe:
		p.Subscribe = codec.Subscribe{PacketID: c.PacketID, SubscriptionIdentifier: uint32(val(c.Properties.SubscriptionIdentifier)),
			UserProperties: fromPahoUser(c.Properties.User)}
		for _, s := range c.Subscriptions {
			p.Subscribe.Subscriptions = append(p.Subscribe.Subscriptions, codec.Subscription{Filter: s.Topic, QoS: s.QoS,
				NoLocal: s.NoLocal, RetainAsPublished: s.RetainAsPublished, RetainHandling: s.RetainHandling})
		}
	case *paho.Unsubscribe:
		p.Unsubscribe = codec.Unsubscribe{PacketID: c.PacketID, Filters: c.Topics, UserProperties: fromPahoUser(c.Properties.User)}
	case *paho.Suback:
		p.Suback = codec.Suback{PacketID: c.PacketID, ReasonCodes: c.Reasons, ReasonString: c.Properties.ReasonString, UserProperties: fromPahoUser(c.Properties.User)}
	case *paho.Unsuback:
		p.Suback = codec.Suback{PacketID: c.PacketID, ReasonCodes: c.Reasons, ReasonString: c.Properties.ReasonString, UserProperties: fromPahoUser(c.Properties.User)}
	case *paho.Disconnect:
		pr := c.Properties
		p.Disconnect = codec.Disconnect{ReasonCode: c.ReasonCode, ReasonString: pr.ReasonString, ServerReference: pr.ServerReference,
			UserProperties: fromPahoUser(pr.User)}
		p.Disconnect.SessionExpiryInterval, p.Disconnect.HasSessionExpiry = deref(pr.SessionExpiryInterval)
	case *paho.Auth:
		pr := c.Properties
		p.Auth = codec.Auth{ReasonCode: c.ReasonCode, AuthMethod: pr.AuthMethod, AuthData: pr.AuthData, ReasonString: pr.ReasonString,
			UserProperties: fromPahoUser(pr.User)}
	}
	return p
}

func val[T any](p *T) T {
	v, _ := deref(p)
	return v
}

// writePaho builds the paho.golang packet for p and writes it to w.
func writePaho(w io.Writer, p *codec.Packet) error {
	cp := paho.NewControlPacket(byte(p.Type))
	user := func(u []codec.UserProperty) *paho.Properties { return &paho.Properties{User: toPahoUser(u)} }
	switch p.Type {
	case codec.TypeConnect:
		c := &p.Connect
		pc := cp.Content.(*paho.Connect)
		pc.ClientID, pc.CleanStart, pc.KeepAlive = c.ClientID, c.CleanStart, c.KeepAlive
		pc.UsernameFlag, pc.Username, pc.PasswordFlag, pc.Password = c.HasUsername, c.Username, c.HasPassword, c.Password
		pc.Properties = user(c.UserProperties)
		pc.Properties.SessionExpiryInterval = ptrIf(c.SessionExpiryInterval != 0, c.SessionExpiryInterval)
		pc.Properties.ReceiveMaximum = ptrIf(c.ReceiveMaximum != 0, c.ReceiveMaximum)
		pc.Properties.MaximumPacketSize = ptrIf(c.MaximumPacketSize != 0, c.MaximumPacketSize)
		pc.Properties.TopicAliasMaximum = ptrIf(c.TopicAliasMaximum != 0, c.TopicAliasMaximum)
		if wl := c.Will; wl != nil {
			pc.WillFlag, pc.WillTopic, pc.WillMessage, pc.WillQOS, pc.WillRetain = true, wl.Topic, wl.Payload, wl.QoS, wl.Retain
			pc.WillProperties = user(wl.UserProperties)
			pc.WillProperties.WillDelayInterval = ptrIf(wl.DelayInterval != 0, wl.DelayInterval)
			pc.WillProperties.MessageExpiry = ptrIf(wl.HasMessageExpiry, wl.MessageExpiry)
			pc.WillProperties.PayloadFormat = ptrIf(wl.HasPayloadFormat, wl.PayloadFormat)
			pc.WillProperties.ContentType, pc.WillProperties.ResponseTopic = wl.ContentType, wl.ResponseTopic
			pc.WillProperties.CorrelationData = wl.CorrelationData
		}
	case codec.TypeConnack:
		c := &p.Connack
		pc := cp.Content.(*paho.Connack)
		pc.SessionPresent, pc.ReasonCode = c.SessionPresent, c.ReasonCode
		pr := user(c.UserProperties)
		pr.ReceiveMaximum = ptrIf(c.ReceiveMaximum != 0, c.ReceiveMaximum)
		pr.MaximumQOS = ptrIf(c.HasMaximumQoS, c.MaximumQoS)
		pr.RetainAvailable = ptrIf(!c.RetainAvailable, byte(0))
		pr.MaximumPacketSize = ptrIf(c.MaximumPacketSize != 0, c.MaximumPacketSize)
		pr.TopicAliasMaximum = ptrIf(c.TopicAliasMaximum != 0, c.TopicAliasMaximum)
		pr.AssignedClientID, pr.ReasonString, pr.ServerReference = c.AssignedClientID, c.ReasonString, c.ServerReference
		pr.ServerKeepAlive = ptrIf(c.HasServerKeepAlive, c.ServerKeepAlive)
		pr.SessionExpiryInterval = ptrIf(c.HasSessionExpiry, c.SessionExpiryInterval)
		pc.Properties = pr
	case codec.TypePublish:
		c := &p.Publish
		pc := cp.Content.(*paho.Publish)
		pc.Topic, pc.Payload, pc.QoS, pc.Retain, pc.Duplicate, pc.PacketID = c.Topic, c.Payload, c.QoS, c.Retain, c.Dup, c.PacketID
		pr := user(c.UserProperties)
		pr.TopicAlias = ptrIf(c.TopicAlias != 0, c.TopicAlias)
		pr.MessageExpiry = ptrIf(c.HasMessageExpiry, c.MessageExpiry)
		pr.PayloadFormat = ptrIf(c.HasPayloadFormat, c.PayloadFormat)
		pr.ContentType, pr.ResponseTopic, pr.CorrelationData = c.ContentType, c.ResponseTopic, c.CorrelationData
		pc.Properties = pr
	case codec.TypePuback:
		cp.Content = &paho.Puback{PacketID: p.Ack.PacketID, ReasonCode: p.Ack.ReasonCode, Properties: ackProps(&p.Ack)}
	case codec.TypePubrec:
		cp.Content = &paho.Pubrec{PacketID: p.Ack.PacketID, ReasonCode: p.Ack.ReasonCode, Properties: ackProps(&p.Ack)}
	case codec.TypePubrel:
		cp.Content = &paho.Pubrel{PacketID: p.Ack.PacketID, ReasonCode: p.Ack.ReasonCode, Properties: ackProps(&p.Ack)}
	case codec.TypePubcomp:
		cp.Content = &paho.Pubcomp{PacketID: p.Ack.PacketID, ReasonCode: p.Ack.ReasonCode, Properties: ackProps(&p.Ack)}
	case codec.TypeSubscribe:
		s := &p.Subscribe
		pc := cp.Content.(*paho.Subscribe)
		pc.PacketID, pc.Properties = s.PacketID, user(s.UserProperties)
		pc.Properties.SubscriptionIdentifier = ptrIf(s.SubscriptionIdentifier != 0, int(s.SubscriptionIdentifier))
		for _, sub := range s.Subscriptions {
			pc.Subscriptions = append(pc.Subscriptions, paho.SubOptions{Topic: sub.Filter, QoS: sub.QoS, NoLocal: sub.NoLocal,
				RetainAsPublished: sub.RetainAsPublished, RetainHandling: sub.RetainHandling})
		}
	case codec.TypeUnsubscribe:
		pc := cp.Content.(*paho.Unsubscribe)
		pc.PacketID, pc.Topics, pc.Properties = p.Unsubscribe.PacketID, p.Unsubscribe.Filters, user(p.Unsubscribe.UserProperties)
	case codec.TypeSuback:
		pr := user(p.Suback.UserProperties)
		pr.ReasonString = p.Suback.ReasonString
		cp.Content = &paho.Suback{PacketID: p.Suback.PacketID, Reasons: p.Suback.ReasonCodes, Properties: pr}
	case codec.TypeUnsuback:
		pr := user(p.Suback.UserProperties)
		pr.ReasonString = p.Suback.ReasonString
		cp.Content = &paho.Unsuback{PacketID: p.Suback.PacketID, Reasons: p.Suback.ReasonCodes, Properties: pr}
	case codec.TypeDisconnect:
		d := &p.Disconnect
		pr := user(d.UserProperties)
		pr.ReasonString, pr.ServerReference = d.ReasonString, d.ServerReference
		pr.SessionExpiryInterval = ptrIf(d.HasSessionExpiry, d.SessionExpiryInterval)
		cp.Content = &paho.Disconnect{ReasonCode: d.ReasonCode, Properties: pr}
	case codec.TypeAuth:
		a := &p.Auth
		pr := user(a.UserProperties)
		pr.AuthMethod, pr.AuthData, pr.ReasonString = a.AuthMethod, a.AuthData, a.ReasonString
		cp.Content = &paho.Auth{ReasonCode: a.ReasonCode, Properties: pr}
	}
	_, err := cp.WriteTo(w)
	return err
}

func ackProps(a *codec.Ack) *paho.Properties {
	return &paho.Properties{ReasonString: a.ReasonString, User: toPahoUser(a.UserProperties)}
}
