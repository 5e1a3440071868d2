package codec_test

// Conformance: every encoder's output, at every protocol level, is decoded by
// an independent implementation (mochi-mqtt's packets for 3.1, 3.1.1 and 5;
// paho.golang's packets for 5, the only level it speaks) and the fields are
// compared; and what those implementations encode, this decoder reads back to
// the same fields. Both libraries are test-only dependencies.

import (
	"bytes"
	"fmt"
	"reflect"
	"testing"

	paho "github.com/eclipse/paho.golang/packets"

	"github.com/nbiot-uploader/uploader/codec"
)

// conformanceCorpus returns packets covering every encoder and the fields
// each level can carry.
func conformanceCorpus(v codec.Version) []codec.Packet {
	v5 := v == codec.V5
	ups := func(kv ...string) []codec.UserProperty {
		if !v5 {
			return nil
		}
		var out []codec.UserProperty
		for i := 0; i+1 < len(kv); i += 2 {
			out = append(out, codec.UserProperty{Key: kv[i], Value: kv[i+1]})
		}
		return out
	}
	ifV5 := func(s string) string {
		if v5 {
			return s
		}
		return ""
	}
	var u32 = func(x uint32) uint32 {
		if v5 {
			return x
		}
		return 0
	}
	full := codec.Connect{Version: v, ClientID: "site-7/board-2", CleanStart: true, KeepAlive: 300,
		HasUsername: true, Username: "meter", HasPassword: true, Password: []byte{0, 1, 2, 0xff},
		Will: &codec.Will{Topic: "sites/7/status", Payload: []byte("offline"), QoS: 1, Retain: true,
			DelayInterval: u32(30), HasMessageExpiry: v5, MessageExpiry: u32(3600), HasPayloadFormat: v5, PayloadFormat: byte(u32(1)),
			ContentType: ifV5("text/plain"), ResponseTopic: ifV5("sites/7/r"), UserProperties: ups("w", "1")},
		SessionExpiryInterval: u32(86400), ReceiveMaximum: uint16(u32(10)), MaximumPacketSize: u32(1460),
		TopicAliasMaximum: uint16(u32(16)), UserProperties: ups("fw", "1.2.3", "fw", "dup-key")}
	if v5 {
		full.Will.CorrelationData = []byte{9, 8, 7}
	}
	noPass := full
	noPass.HasPassword, noPass.Password, noPass.Will = false, nil, &codec.Will{Topic: "w", QoS: 2}
	if v5 {
		noPass.HasUsername, noPass.Username, noPass.HasPassword, noPass.Password = false, "", true, []byte("token")
	}
	pkts := []codec.Packet{
		{Type: codec.TypeConnect, Connect: codec.Connect{Version: v, ClientID: "a", CleanStart: true, KeepAlive: 60}},
		{Type: codec.TypeConnect, Connect: codec.Connect{Version: v, ClientID: "persistent", KeepAlive: 0}},
		{Type: codec.TypeConnect, Connect: full},
		{Type: codec.TypeConnect, Connect: noPass},
		{Type: codec.TypePublish, Publish: codec.Publish{Topic: "t", Payload: []byte("x")}},
		{Type: codec.TypePublish, Publish: codec.Publish{Topic: "sensors/site-0001/board-07/temperature/c1", Payload: bytes.Repeat([]byte{0xa5}, 64), QoS: 1, PacketID: 1}},
		{Type: codec.TypePublish, Publish: codec.Publish{Topic: "a/b", QoS: 2, PacketID: 0xffff, Dup: true, Retain: true}},
		{Type: codec.TypePublish, Publish: codec.Publish{Topic: "long", Payload: bytes.Repeat([]byte("y"), 200), QoS: 1, PacketID: 300}},
		{Type: codec.TypePublish, Publish: codec.Publish{Topic: "longer", Payload: bytes.Repeat([]byte("z"), 20000), QoS: 1, PacketID: 301}},
		{Type: codec.TypePublish, Publish: codec.Publish{Topic: "ünïcødé/温度", Payload: []byte("1")}},
		{Type: codec.TypePuback, Ack: codec.Ack{PacketID: 1}},
		{Type: codec.TypePubrec, Ack: codec.Ack{PacketID: 2}},
		{Type: codec.TypePubrel, Ack: codec.Ack{PacketID: 3}},
		{Type: codec.TypePubcomp, Ack: codec.Ack{PacketID: 0xffff}},
		{Type: codec.TypeSubscribe, Subscribe: codec.Subscribe{PacketID: 5, Subscriptions: []codec.Subscription{{Filter: "cmd/site-7/#", QoS: 1}, {Filter: "+/all", QoS: 2}, {Filter: "x"}}}},
		{Type: codec.TypeUnsubscribe, Unsubscribe: codec.Unsubscribe{PacketID: 6, Filters: []string{"cmd/site-7/#", "x"}}},
		{Type: codec.TypePingreq},
		{Type: codec.TypeDisconnect},
		{Type: codec.TypeConnack, Connack: codec.Connack{RetainAvailable: true}},
		{Type: codec.TypeSuback, Suback: codec.Suback{PacketID: 5, ReasonCodes: []byte{1, 2, 0, 0x80}}},
		{Type: codec.TypePingresp},
	}
	if v != codec.V31 {
		pkts = append(pkts, codec.Packet{Type: codec.TypeConnack, Connack: codec.Connack{SessionPresent: true, RetainAvailable: true}})
	}
	if !v5 {
		return append(pkts,
			codec.Packet{Type: codec.TypeConnack, Connack: codec.Connack{ReasonCode: 5, RetainAvailable: true}},
			codec.Packet{Type: codec.TypeUnsuback, Suback: codec.Suback{PacketID: 6}},
			codec.Packet{Type: codec.TypeConnect, Connect: codec.Connect{Version: v, ClientID: "u", HasUsername: true, Username: "only-user"}},
		)
	}
	return append(pkts,
		codec.Packet{Type: codec.TypeConnect, Connect: codec.Connect{Version: v, CleanStart: true}},
		codec.Packet{Type: codec.TypePublish, Publish: codec.Publish{Topic: "a/b", Payload: []byte("hi"), QoS: 1, PacketID: 1,
			HasPayloadFormat: true, PayloadFormat: 1, HasMessageExpiry: true, MessageExpiry: 60, TopicAlias: 3,
			ContentType: "application/json", ResponseTopic: "reply/7", CorrelationData: []byte{1, 2},
			UserProperties: ups("k", "v", "k", "v2")}},
		codec.Packet{Type: codec.TypePublish, Publish: codec.Publish{TopicAlias: 3, Payload: []byte("aliased"), QoS: 1, PacketID: 2}},
		codec.Packet{Type: codec.TypePuback, Ack: codec.Ack{PacketID: 7, ReasonCode: 0x10}},
		codec.Packet{Type: codec.TypePubrec, Ack: codec.Ack{PacketID: 8, ReasonCode: 0x80, ReasonString: "quota", UserProperties: ups("q", "1")}},
		codec.Packet{Type: codec.TypePubrel, Ack: codec.Ack{PacketID: 9, ReasonCode: 0x92}},
		codec.Packet{Type: codec.TypeSubscribe, Subscribe: codec.Subscribe{PacketID: 10, SubscriptionIdentifier: 200000,
			UserProperties: ups("s", "t"),
			Subscriptions:  []codec.Subscription{{Filter: "a/+", QoS: 1, NoLocal: true, RetainAsPublished: true, RetainHandling: 2}, {Filter: "#", RetainHandling: 1}}}},
		codec.Packet{Type: codec.TypeUnsubscribe, Unsubscribe: codec.Unsubscribe{PacketID: 11, Filters: []string{"a/+"}, UserProperties: ups("u", "v")}},
		codec.Packet{Type: codec.TypeDisconnect, Disconnect: codec.Disconnect{ReasonCode: 0x04}},
		codec.Packet{Type: codec.TypeDisconnect, Disconnect: codec.Disconnect{ReasonCode: 0x81, HasSessionExpiry: true, SessionExpiryInterval: 0,
			ReasonString: "bye", UserProperties: ups("why", "window closed")}},
		codec.Packet{Type: codec.TypeConnack, Connack: codec.Connack{ReasonCode: 0x87, ReasonString: "not allowed"}},
		codec.Packet{Type: codec.TypeConnack, Connack: codec.Connack{SessionPresent: true, ReceiveMaximum: 20, HasMaximumQoS: true, MaximumQoS: 1,
			RetainAvailable: false, MaximumPacketSize: 1024, TopicAliasMaximum: 10, AssignedClientID: "auto-1",
			HasServerKeepAlive: true, ServerKeepAlive: 120, HasSessionExpiry: true, SessionExpiryInterval: 600,
			ServerReference: "other:1883", UserProperties: ups("x", "y")}},
		codec.Packet{Type: codec.TypeSuback, Suback: codec.Suback{PacketID: 12, ReasonCodes: []byte{0x00, 0x97}, ReasonString: "partly", UserProperties: ups("a", "b")}},
		codec.Packet{Type: codec.TypeUnsuback, Suback: codec.Suback{PacketID: 13, ReasonCodes: []byte{0x00, 0x11}}},
		codec.Packet{Type: codec.TypeAuth, Auth: codec.Auth{ReasonCode: 0x18, AuthMethod: "SCRAM-SHA-1", AuthData: []byte("client-first"), ReasonString: "r", UserProperties: ups("a", "1")}},
	)
}

// view returns the part of p that its type uses, with empty slices made nil
// so that implementations that differ only there compare equal.
func view(p *codec.Packet) any {
	var out any
	switch p.Type {
	case codec.TypeConnect:
		c := p.Connect
		if c.Will != nil {
			w := *c.Will
			c.Will = &w
		}
		out = &c
	case codec.TypeConnack:
		c := p.Connack
		out = &c
	case codec.TypePublish:
		c := p.Publish
		out = &c
	case codec.TypePuback, codec.TypePubrec, codec.TypePubrel, codec.TypePubcomp:
		c := p.Ack
		out = &c
	case codec.TypeSubscribe:
		c := p.Subscribe
		out = &c
	case codec.TypeUnsubscribe:
		c := p.Unsubscribe
		out = &c
	case codec.TypeSuback, codec.TypeUnsuback:
		c := p.Suback
		out = &c
	case codec.TypeDisconnect:
		c := p.Disconnect
		out = &c
	case codec.TypeAuth:
		c := p.Auth
		out = &c
	default:
		return p.Type
	}
	nilEmpty(reflect.ValueOf(out))
	return out
}

// show prints a view including the will a CONNECT points to.
func show(v any) string {
	if c, ok := v.(*codec.Connect); ok && c.Will != nil {
		return fmt.Sprintf("%+v will=%+v", *c, *c.Will)
	}
	return fmt.Sprintf("%+v", v)
}

func nilEmpty(v reflect.Value) {
	switch v.Kind() {
	case reflect.Pointer:
		if !v.IsNil() {
			nilEmpty(v.Elem())
		}
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			nilEmpty(v.Field(i))
		}
	case reflect.Slice:
		if v.Len() == 0 && v.CanSet() {
			v.Set(reflect.Zero(v.Type()))
		}
	}
}

func caseName(v codec.Version, i int, p *codec.Packet) string {
	return fmt.Sprintf("%s/%02d-%s", v, i, p.Type)
}

// Our encoders' bytes, decoded by mochi-mqtt, give back the same fields.
func TestConformanceEncodeDecodedByMochi(t *testing.T) {
	for _, v := range []codec.Version{codec.V31, codec.V311, codec.V5} {
		for i, p := range conformanceCorpus(v) {
			t.Run(caseName(v, i, &p), func(t *testing.T) {
				raw, err := codec.AppendPacket(nil, v, &p)
				if err != nil {
					t.Fatalf("AppendPacket: %v", err)
				}
				mp, err := mochiDecode(v, raw)
				if err != nil {
					t.Fatalf("mochi decode % x: %v", head(raw), err)
				}
				got := fromMochi(mp)
				if !reflect.DeepEqual(view(&got), view(&p)) {
					t.Errorf("mochi decoded\n %s\nwant\n %s", show(view(&got)), show(view(&p)))
				}
			})
		}
	}
}

// Bytes mochi-mqtt encodes decode here to the same fields.
func TestConformanceMochiEncodeDecoded(t *testing.T) {
	for _, v := range []codec.Version{codec.V31, codec.V311, codec.V5} {
		for i, p := range conformanceCorpus(v) {
			if mochiCannotWrite(&p) {
				continue
			}
			t.Run(caseName(v, i, &p), func(t *testing.T) {
				raw, err := mochiEncode(v, toMochi(v, &p))
				if err != nil {
					t.Fatalf("mochi encode: %v", err)
				}
				dv := v
				got, err := codec.NewDecoder(bytes.NewReader(raw), dv, 0).Next()
				if err != nil {
					t.Fatalf("decode mochi bytes % x: %v", head(raw), err)
				}
				if !reflect.DeepEqual(view(got), view(&p)) {
					t.Errorf("decoded\n %s\nwant\n %s", show(view(got)), show(view(&p)))
				}
			})
		}
	}
}

// Our MQTT 5 encoders' bytes, read by paho.golang, give back the same fields.
func TestConformanceEncodeDecodedByPaho(t *testing.T) {
	for i, p := range conformanceCorpus(codec.V5) {
		if pahoCannotRead(&p) {
			continue
		}
		t.Run(caseName(codec.V5, i, &p), func(t *testing.T) {
			raw, err := codec.AppendPacket(nil, codec.V5, &p)
			if err != nil {
				t.Fatalf("AppendPacket: %v", err)
			}
			cp, err := paho.ReadPacket(bytes.NewReader(raw))
			if err != nil {
				t.Fatalf("paho ReadPacket % x: %v", head(raw), err)
			}
			got := fromPaho(cp)
			if !reflect.DeepEqual(view(&got), view(&p)) {
				t.Errorf("paho decoded\n %s\nwant\n %s", show(view(&got)), show(view(&p)))
			}
		})
	}
}

// Bytes paho.golang encodes decode here to the same fields.
func TestConformancePahoEncodeDecoded(t *testing.T) {
	for i, p := range conformanceCorpus(codec.V5) {
		if pahoCannotWrite(&p) {
			continue
		}
		t.Run(caseName(codec.V5, i, &p), func(t *testing.T) {
			var buf bytes.Buffer
			if err := writePaho(&buf, &p); err != nil {
				t.Fatalf("paho WriteTo: %v", err)
			}
			got, err := codec.NewDecoder(&buf, codec.V5, 0).Next()
			if err != nil {
				t.Fatalf("decode paho bytes: %v", err)
			}
			if !reflect.DeepEqual(view(got), view(&p)) {
				t.Errorf("decoded\n %s\nwant\n %s", show(view(got)), show(view(&p)))
			}
		})
	}
}

// pahoCannotRead reports packets that paho.golang v0.23.0 fails to read
// although they are valid: its Disconnect.Unpack and Auth.Unpack read a
// reason code unconditionally, so the two-byte form the spec allows
// (MQTT 5 sections 3.14.2.1 and 3.15.2.1) gives io.EOF.
func pahoCannotRead(p *codec.Packet) bool {
	return p.Type == codec.TypeDisconnect &&
		p.Disconnect.ReasonCode == 0 && !p.Disconnect.HasSessionExpiry && p.Disconnect.ReasonString == ""
}

// mochiCannotWrite reports packets mochi-mqtt v2.7.9 cannot express: it
// writes an acknowledgement's reason code only when it is 0x80 or above, so
// a success code such as 0x10 "no matching subscribers" is lost.
func mochiCannotWrite(p *codec.Packet) bool {
	switch p.Type {
	case codec.TypePuback, codec.TypePubrec, codec.TypePubrel, codec.TypePubcomp:
		return p.Ack.ReasonCode != 0 && p.Ack.ReasonCode < 0x80 && p.Ack.ReasonString == "" && len(p.Ack.UserProperties) == 0
	}
	return false
}

// pahoCannotWrite reports packets paho.golang v0.23.0 writes wrongly: AUTH
// with fixed header flags 0001, which MQTT 5 section 3.15.1 reserves as
// 0000; and will properties packed with CONNECT's property table, which drops
// message expiry, payload format, content type, response topic and
// correlation data.
func pahoCannotWrite(p *codec.Packet) bool {
	switch p.Type {
	case codec.TypeAuth:
		return true
	case codec.TypeConnect:
		w := p.Connect.Will
		return w != nil && (w.HasMessageExpiry || w.HasPayloadFormat || w.ContentType != "" || w.ResponseTopic != "" || len(w.CorrelationData) > 0)
	}
	return false
}
