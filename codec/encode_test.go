package codec_test

import (
	"bytes"
	"reflect"
	"testing"

	"github.com/nbiot-uploader/uploader/codec"
)

// Encoders built from Go values reproduce the hand-written golden vectors.
func TestEncodeGolden(t *testing.T) {
	v311, v5 := codec.V311, codec.V5
	tests := []struct {
		golden string
		encode func([]byte) ([]byte, error)
	}{
		{"connect-v311-minimal", func(b []byte) ([]byte, error) {
			return codec.AppendConnect(b, &codec.Connect{Version: v311, ClientID: "a", CleanStart: true, KeepAlive: 60})
		}},
		{"connect-v31-mqisdp", func(b []byte) ([]byte, error) {
			return codec.AppendConnect(b, &codec.Connect{Version: codec.V31, ClientID: "a", CleanStart: true, KeepAlive: 60})
		}},
		{"connect-v5-minimal", func(b []byte) ([]byte, error) {
			return codec.AppendConnect(b, &codec.Connect{Version: v5, ClientID: "a", CleanStart: true, KeepAlive: 60})
		}},
		{"connect-v311-spec-variable-header", func(b []byte) ([]byte, error) {
			return codec.AppendConnect(b, &codec.Connect{Version: v311, ClientID: "c", CleanStart: true, KeepAlive: 10,
				HasUsername: true, Username: "u", HasPassword: true, Password: []byte("p"),
				Will: &codec.Will{Topic: "w/t", Payload: []byte("bye"), QoS: 1}})
		}},
		{"connect-v5-spec-variable-header", func(b []byte) ([]byte, error) {
			return codec.AppendConnect(b, &codec.Connect{Version: v5, ClientID: "c", CleanStart: true, KeepAlive: 10,
				HasUsername: true, Username: "u", HasPassword: true, Password: []byte("p"),
				Will:                  &codec.Will{Topic: "w/t", Payload: []byte("bye"), QoS: 1},
				SessionExpiryInterval: 10})
		}},
		{"connect-v5-properties", func(b []byte) ([]byte, error) {
			return codec.AppendConnect(b, &codec.Connect{Version: v5, ClientID: "a", CleanStart: true, KeepAlive: 60,
				SessionExpiryInterval: 3600, ReceiveMaximum: 20, MaximumPacketSize: 4096, TopicAliasMaximum: 10,
				UserProperties: []codec.UserProperty{{Key: "site", Value: "n1"}}})
		}},
		{"connect-v31-will-auth", func(b []byte) ([]byte, error) {
			return codec.AppendConnect(b, &codec.Connect{Version: codec.V31, ClientID: "c", CleanStart: true, KeepAlive: 60,
				HasUsername: true, Username: "u", HasPassword: true, Password: []byte("p"),
				Will: &codec.Will{Topic: "w", Payload: []byte("x"), QoS: 1, Retain: true}})
		}},
		{"connect-v5-will-properties", func(b []byte) ([]byte, error) {
			return codec.AppendConnect(b, &codec.Connect{Version: v5, ClientID: "c", CleanStart: true,
				Will: &codec.Will{Topic: "w", Payload: []byte("x"), DelayInterval: 5, ContentType: "t"}})
		}},
		{"publish-v311-qos0", func(b []byte) ([]byte, error) {
			return codec.AppendPublish(b, v311, &codec.Publish{Topic: "a/b", Payload: []byte("hi")})
		}},
		{"publish-v311-spec-qos1", func(b []byte) ([]byte, error) {
			return codec.AppendPublish(b, v311, &codec.Publish{Topic: "a/b", Payload: []byte("hi"), QoS: 1, PacketID: 10})
		}},
		{"publish-v311-qos2-dup-retain", func(b []byte) ([]byte, error) {
			return codec.AppendPublish(b, v311, &codec.Publish{Topic: "a/b", Payload: []byte("hi"), QoS: 2, PacketID: 11, Dup: true, Retain: true})
		}},
		{"publish-v5-properties", func(b []byte) ([]byte, error) {
			return codec.AppendPublish(b, v5, &codec.Publish{Topic: "a/b", Payload: []byte("hi"), QoS: 1, PacketID: 1,
				HasPayloadFormat: true, PayloadFormat: 1, HasMessageExpiry: true, MessageExpiry: 60, TopicAlias: 1,
				ContentType: "text", UserProperties: []codec.UserProperty{{Key: "k", Value: "v"}}})
		}},
		{"publish-v5-topic-alias-only", func(b []byte) ([]byte, error) {
			return codec.AppendPublish(b, v5, &codec.Publish{TopicAlias: 1, Payload: []byte("hi")})
		}},
		{"publish-v5-response-topic-correlation", func(b []byte) ([]byte, error) {
			return codec.AppendPublish(b, v5, &codec.Publish{Topic: "a", QoS: 1, PacketID: 2, ResponseTopic: "r/1",
				CorrelationData: []byte{0xab, 0xcd}, Payload: []byte("z")})
		}},
		{"puback-v311", func(b []byte) ([]byte, error) { return codec.AppendAck(b, v311, codec.TypePuback, 1, 0) }},
		{"pubrec-v311", func(b []byte) ([]byte, error) { return codec.AppendAck(b, v311, codec.TypePubrec, 1, 0) }},
		{"pubrel-v311", func(b []byte) ([]byte, error) { return codec.AppendAck(b, v311, codec.TypePubrel, 1, 0) }},
		{"pubcomp-v311", func(b []byte) ([]byte, error) { return codec.AppendAck(b, v311, codec.TypePubcomp, 0xffff, 0) }},
		{"puback-v5-short", func(b []byte) ([]byte, error) { return codec.AppendAck(b, v5, codec.TypePuback, 1, 0) }},
		{"puback-v5-no-matching-subscribers", func(b []byte) ([]byte, error) {
			return codec.AppendAck(b, v5, codec.TypePuback, 1, 0x10)
		}},
		{"subscribe-v311", func(b []byte) ([]byte, error) {
			return codec.AppendSubscribe(b, v311, &codec.Subscribe{PacketID: 1, Subscriptions: []codec.Subscription{
				{Filter: "a/+", QoS: 1}, {Filter: "#"}}})
		}},
		{"subscribe-v5-options", func(b []byte) ([]byte, error) {
			return codec.AppendSubscribe(b, v5, &codec.Subscribe{PacketID: 1, SubscriptionIdentifier: 5,
				Subscriptions: []codec.Subscription{{Filter: "a/+", QoS: 1, NoLocal: true, RetainAsPublished: true, RetainHandling: 2}}})
		}},
		{"unsubscribe-v311", func(b []byte) ([]byte, error) {
			return codec.AppendUnsubscribe(b, v311, &codec.Unsubscribe{PacketID: 2, Filters: []string{"a/b"}})
		}},
		{"unsubscribe-v5", func(b []byte) ([]byte, error) {
			return codec.AppendUnsubscribe(b, v5, &codec.Unsubscribe{PacketID: 2, Filters: []string{"a/b"}})
		}},
		{"pingreq", func(b []byte) ([]byte, error) { return codec.AppendPingreq(b), nil }},
		{"disconnect-v311", func(b []byte) ([]byte, error) { return codec.AppendDisconnect(b, v311, nil) }},
		{"disconnect-v5-normal", func(b []byte) ([]byte, error) { return codec.AppendDisconnect(b, v5, &codec.Disconnect{}) }},
		{"disconnect-v5-with-will", func(b []byte) ([]byte, error) {
			return codec.AppendDisconnect(b, v5, &codec.Disconnect{ReasonCode: 0x04})
		}},
		{"disconnect-v5-session-expiry", func(b []byte) ([]byte, error) {
			return codec.AppendDisconnect(b, v5, &codec.Disconnect{HasSessionExpiry: true})
		}},
		{"connack-v5-properties", func(b []byte) ([]byte, error) {
			return codec.AppendConnack(b, v5, &codec.Connack{ReceiveMaximum: 10, HasMaximumQoS: true, MaximumQoS: 1,
				RetainAvailable: false, MaximumPacketSize: 1024, AssignedClientID: "id", TopicAliasMaximum: 5,
				ReasonString: "ok", HasServerKeepAlive: true, ServerKeepAlive: 60})
		}},
	}
	for _, tc := range tests {
		t.Run(tc.golden, func(t *testing.T) {
			want := goldenByName(t, tc.golden).raw
			prefix := []byte("keep")
			got, err := tc.encode(append([]byte(nil), prefix...))
			if err != nil {
				t.Fatalf("encode error = %v", err)
			}
			if !bytes.HasPrefix(got, prefix) {
				t.Fatalf("encoder overwrote the caller's bytes: % x", got)
			}
			if got = got[len(prefix):]; !bytes.Equal(got, want) {
				t.Errorf("encoded\n got % x\nwant % x", got, want)
			}
		})
	}
}

// Decoded fields match what the golden bytes say, field by field.
func TestDecodeGoldenFields(t *testing.T) {
	t.Run("connack-v5-properties", func(t *testing.T) {
		c := goldenByName(t, "connack-v5-properties")
		got := decodeOne(t, c.version, c.raw).Connack
		want := codec.Connack{ReceiveMaximum: 10, HasMaximumQoS: true, MaximumQoS: 1, RetainAvailable: false,
			MaximumPacketSize: 1024, AssignedClientID: "id", TopicAliasMaximum: 5, ReasonString: "ok",
			HasServerKeepAlive: true, ServerKeepAlive: 60, UserProperties: got.UserProperties}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("Connack=%+v, want %+v", got, want)
		}
	})
	t.Run("connack-v311-session-present", func(t *testing.T) {
		c := goldenByName(t, "connack-v311-session-present")
		got := decodeOne(t, c.version, c.raw).Connack
		if !got.SessionPresent || got.ReasonCode != 0 || !got.RetainAvailable {
			t.Errorf("Connack=%+v, want session present, accepted, retain available", got)
		}
	})
	t.Run("connect-v311-spec-variable-header", func(t *testing.T) {
		c := goldenByName(t, "connect-v311-spec-variable-header")
		got := decodeOne(t, c.version, c.raw).Connect
		if got.Version != codec.V311 || got.ClientID != "c" || !got.CleanStart || got.KeepAlive != 10 ||
			!got.HasUsername || got.Username != "u" || !got.HasPassword || string(got.Password) != "p" ||
			got.Will == nil || got.Will.Topic != "w/t" || string(got.Will.Payload) != "bye" || got.Will.QoS != 1 || got.Will.Retain {
			t.Errorf("Connect=%+v will=%+v", got, got.Will)
		}
	})
	t.Run("publish-v5-properties", func(t *testing.T) {
		c := goldenByName(t, "publish-v5-properties")
		p := decodeOne(t, c.version, c.raw)
		got := p.Publish
		want := codec.Publish{Topic: "a/b", Payload: []byte("hi"), QoS: 1, PacketID: 1,
			HasPayloadFormat: true, PayloadFormat: 1, HasMessageExpiry: true, MessageExpiry: 60, TopicAlias: 1,
			ContentType: "text", UserProperties: []codec.UserProperty{{Key: "k", Value: "v"}}}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("Publish=%+v, want %+v", got, want)
		}
		if p.Flags != 0x02 {
			t.Errorf("Flags=%#x, want 0x2", p.Flags)
		}
	})
	t.Run("puback-v5-reason-string", func(t *testing.T) {
		c := goldenByName(t, "puback-v5-reason-string")
		got := decodeOne(t, c.version, c.raw).Ack
		if got.PacketID != 1 || got.ReasonCode != 0x97 || got.ReasonString != "no" {
			t.Errorf("Ack=%+v, want id 1, code 0x97, reason \"no\"", got)
		}
	})
	t.Run("unsuback-v311", func(t *testing.T) {
		c := goldenByName(t, "unsuback-v311")
		p := decodeOne(t, c.version, c.raw)
		if p.Type != codec.TypeUnsuback || p.Ack.PacketID != 2 || p.Suback.PacketID != 2 {
			t.Errorf("UNSUBACK decoded as %+v", p)
		}
	})
	t.Run("suback-v5", func(t *testing.T) {
		c := goldenByName(t, "suback-v5")
		got := decodeOne(t, c.version, c.raw).Suback
		if got.PacketID != 1 || !bytes.Equal(got.ReasonCodes, []byte{0x01, 0x80}) {
			t.Errorf("Suback=%+v", got)
		}
	})
	t.Run("subscribe-v5-options", func(t *testing.T) {
		c := goldenByName(t, "subscribe-v5-options")
		got := decodeOne(t, c.version, c.raw).Subscribe
		want := codec.Subscribe{PacketID: 1, SubscriptionIdentifier: 5, UserProperties: got.UserProperties,
			Subscriptions: []codec.Subscription{{Filter: "a/+", QoS: 1, NoLocal: true, RetainAsPublished: true, RetainHandling: 2}}}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("Subscribe=%+v, want %+v", got, want)
		}
	})
}
