package codec_test

import (
	"bytes"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/nbiot-uploader/uploader/codec"
)

// fuzzSeeds returns the golden vectors and the conformance corpus encoded,
// small enough to mutate quickly.
func fuzzSeeds(f *testing.F) [][]byte {
	var seeds [][]byte
	for _, c := range loadGolden(f) {
		if len(c.raw) <= 4096 {
			seeds = append(seeds, c.raw)
		}
	}
	for _, v := range []codec.Version{codec.V31, codec.V311, codec.V5} {
		for _, p := range conformanceCorpus(v) {
			if raw, err := codec.AppendPacket(nil, v, &p); err == nil && len(raw) <= 4096 {
				seeds = append(seeds, raw)
			}
		}
	}
	return seeds
}

// decoderLenient reports packets the decoder accepts, as a broker must read
// them before refusing, but the encoder will not produce.
func decoderLenient(p *codec.Packet) bool {
	c := &p.Connect
	return p.Type == codec.TypeConnect && c.ClientID == "" && (c.Version == codec.V31 || !c.CleanStart)
}

// FuzzDecoder feeds arbitrary bytes to Decoder.Next at each protocol level.
// Whatever the bytes, it must not panic or hang, its buffer must stay within
// the maximum packet size, errors must be classified, and every packet it
// accepts must re-encode to bytes that decode to the same fields.
func FuzzDecoder(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		for _, v := range []byte{3, 4, 5} {
			f.Add(s, v)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte, level byte) {
		v := codec.Version(3 + level%3)
		const max = 8 << 10
		d := codec.NewDecoder(bytes.NewReader(data), v, max)
		consumed, rejected := 0, false
		for {
			p, err := d.Next()
			if codec.DecoderBufferCap(d) > max {
				t.Fatalf("decoder buffer grew to %d, maximum %d", codec.DecoderBufferCap(d), max)
			}
			if errors.Is(err, io.EOF) {
				if !rejected && consumed != len(data) {
					t.Fatalf("io.EOF after %d of %d bytes", consumed, len(data))
				}
				return
			}
			if err != nil {
				if !classified(err) {
					t.Fatalf("unclassified error %v", err)
				}
				if isFraming(err) {
					if _, again := d.Next(); !errors.Is(again, err) && again.Error() != err.Error() {
						t.Fatalf("framing error %v not sticky: %v", err, again)
					}
					return
				}
				rejected = true
				continue // the packet was read in full; the stream goes on
			}
			consumed += p.Size
			if p.Size < 2 || p.Size > max {
				t.Fatalf("Size=%d", p.Size)
			}
			checkOnlyOwnField(t, p)
			checkReencode(t, v, p)
			if p.Type == codec.TypeConnect {
				d.SetVersion(p.Connect.Version)
				v = p.Connect.Version
			}
		}
	})
}

// checkOnlyOwnField fails when a field other than the one p.Type names
// holds data, such as a leftover from an earlier packet.
func checkOnlyOwnField(t *testing.T, p *codec.Packet) {
	t.Helper()
	q := *p
	q.Type, q.Flags, q.Size = 0, 0, 0
	switch p.Type {
	case codec.TypeConnect:
		q.Connect = codec.Connect{}
	case codec.TypeConnack:
		q.Connack = codec.Connack{}
	case codec.TypePublish:
		q.Publish = codec.Publish{}
	case codec.TypePuback, codec.TypePubrec, codec.TypePubrel, codec.TypePubcomp:
		q.Ack = codec.Ack{}
	case codec.TypeSubscribe:
		q.Subscribe = codec.Subscribe{}
	case codec.TypeSuback, codec.TypeUnsuback:
		q.Suback, q.Ack = codec.Suback{}, codec.Ack{}
	case codec.TypeUnsubscribe:
		q.Unsubscribe = codec.Unsubscribe{}
	case codec.TypeDisconnect:
		q.Disconnect = codec.Disconnect{}
	case codec.TypeAuth:
		q.Auth = codec.Auth{}
	}
	nilEmpty(reflect.ValueOf(&q))
	if !reflect.DeepEqual(q, codec.Packet{}) {
		t.Fatalf("%s packet carries other fields: %+v", p.Type, q)
	}
}

func checkReencode(t *testing.T, v codec.Version, p *codec.Packet) {
	t.Helper()
	want := view(p)
	enc, err := codec.AppendPacket(nil, v, p)
	if err != nil {
		if decoderLenient(p) {
			return
		}
		t.Fatalf("re-encode of decoded %s failed: %v\n%s", p.Type, err, show(want))
	}
	if n, err := sizeOf(v, p); err != nil || (n >= 0 && n != len(enc)) {
		t.Fatalf("size function = %d, %v; encoder wrote %d", n, err, len(enc))
	}
	again, err := codec.NewDecoder(bytes.NewReader(enc), v, 0).Next()
	if err != nil {
		t.Fatalf("decode of re-encoded %s failed: %v\n% x", p.Type, err, enc)
	}
	if got := view(again); !reflect.DeepEqual(got, want) {
		t.Fatalf("round trip changed the packet\n got %s\nwant %s", show(got), show(want))
	}
}

func classified(err error) bool {
	for _, s := range []error{codec.ErrMalformedPacket, codec.ErrMalformedLength, codec.ErrTruncated,
		codec.ErrPacketTooLarge, codec.ErrUnsupportedVersion} {
		if errors.Is(err, s) {
			return true
		}
	}
	return false
}

// isFraming reports errors after which the decoder has lost the packet
// boundary. A malformed integer inside a body that was read in full is a
// malformed packet, not a framing error.
func isFraming(err error) bool {
	if errors.Is(err, codec.ErrMalformedPacket) {
		return false
	}
	return errors.Is(err, codec.ErrMalformedLength) || errors.Is(err, codec.ErrTruncated) || errors.Is(err, codec.ErrPacketTooLarge)
}

// FuzzDecodeVarint checks the variable byte integer decoder against its
// encoder: at most four bytes, and any value it returns re-encodes minimally.
func FuzzDecodeVarint(f *testing.F) {
	for _, s := range [][]byte{{0}, {0x7f}, {0x80, 0x01}, {0xff, 0xff, 0xff, 0x7f}, {0x80, 0x80, 0x80, 0x80, 0x01}, {0xff}, {0x80, 0x00}} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		v, n, err := codec.DecodeVarint(data)
		if err != nil {
			if !errors.Is(err, codec.ErrMalformedLength) && !errors.Is(err, codec.ErrTruncated) {
				t.Fatalf("unclassified error %v", err)
			}
			return
		}
		if n < 1 || n > 4 || n > len(data) || v < 0 || v > codec.MaxRemainingLength {
			t.Fatalf("DecodeVarint(% x) = %d, %d", data, v, n)
		}
		enc, err := codec.AppendVarint(nil, v)
		if err != nil || len(enc) > n {
			t.Fatalf("AppendVarint(%d) = % x, %v; input used %d bytes", v, enc, err, n)
		}
		if back, m, err := codec.DecodeVarint(enc); err != nil || back != v || m != len(enc) {
			t.Fatalf("round trip of %d gave %d, %d, %v", v, back, m, err)
		}
	})
}

// FuzzTopic checks the topic validators and that a valid topic survives a
// PUBLISH round trip at every level.
func FuzzTopic(f *testing.F) {
	for _, s := range []string{"a/b", "#", "+/x", "a\x00", "\xff", "", "sensors/été/温度", "a/#/b",
		"a\x01", "a\u0085", "\ufdd0", "\U0001ffff", "a\x7f", "a\ufffd", strings.Repeat("/", 201)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, topic string) {
		nameErr := codec.ValidateTopicName(topic)
		filterErr := codec.ValidateTopicFilter(topic)
		// The rules of ValidateTopicName, restated without its fast path:
		// mosquitto_validate_utf8 and mosquitto_pub_topic_check.
		wantValid := topic != "" && len(topic) <= 65535 && utf8.ValidString(topic) &&
			!strings.ContainsAny(topic, "+#") && strings.Count(topic, "/") <= 200
		for _, r := range topic {
			if r <= 0x1f || (r >= 0x7f && r <= 0x9f) || (r >= 0xfdd0 && r <= 0xfdef) ||
				r%0x10000 == 0xfffe || r%0x10000 == 0xffff {
				wantValid = false
			}
		}
		if (nameErr == nil) != wantValid {
			t.Fatalf("ValidateTopicName(%q) = %v, want valid %v", topic, nameErr, wantValid)
		}
		if nameErr == nil && filterErr != nil {
			t.Fatalf("valid topic name %q is an invalid filter: %v", topic, filterErr)
		}
		for _, v := range []codec.Version{codec.V31, codec.V311, codec.V5} {
			p := codec.Publish{Topic: topic, Payload: []byte("x"), QoS: 1, PacketID: 1}
			raw, err := codec.AppendPublish(nil, v, &p)
			if (err == nil) != (nameErr == nil) {
				t.Fatalf("AppendPublish error %v, ValidateTopicName %v", err, nameErr)
			}
			if err != nil {
				continue
			}
			got, err := codec.NewDecoder(bytes.NewReader(raw), v, 0).Next()
			if err != nil || got.Publish.Topic != topic {
				t.Fatalf("decode: %v, topic %q", err, got.Publish.Topic)
			}
		}
		if filterErr == nil {
			s := codec.Subscribe{PacketID: 1, Subscriptions: []codec.Subscription{{Filter: topic}}}
			raw, err := codec.AppendSubscribe(nil, codec.V311, &s)
			if err != nil {
				t.Fatalf("AppendSubscribe(%q): %v", topic, err)
			}
			if got, err := codec.NewDecoder(bytes.NewReader(raw), codec.V311, 0).Next(); err != nil || got.Subscribe.Subscriptions[0].Filter != topic {
				t.Fatalf("decode SUBSCRIBE: %v", err)
			}
		}
	})
}

// FuzzPublishRoundTrip drives the PUBLISH encoder with arbitrary fields: it
// either refuses with a classified error or produces bytes of exactly the
// announced size that decode to the same fields.
func FuzzPublishRoundTrip(f *testing.F) {
	f.Add(byte(4), "a/b", []byte("hi"), byte(1), uint16(1), uint16(0), uint32(0), "", "k", "v", false, false)
	f.Add(byte(5), "", []byte("x"), byte(0), uint16(0), uint16(3), uint32(60), "text", "", "", true, false)
	f.Add(byte(3), "t", []byte{}, byte(2), uint16(9), uint16(0), uint32(0), "", "", "", false, true)
	f.Fuzz(func(t *testing.T, level byte, topic string, payload []byte, qos byte, id, alias uint16, expiry uint32,
		contentType, key, value string, retain, dup bool) {
		v := codec.Version(3 + level%3)
		p := codec.Publish{Topic: topic, Payload: payload, QoS: qos % 4, PacketID: id, Retain: retain, Dup: dup}
		if v == codec.V5 {
			p.TopicAlias, p.HasMessageExpiry, p.MessageExpiry, p.ContentType = alias, expiry != 0, expiry, contentType
			if key != "" {
				p.UserProperties = []codec.UserProperty{{Key: key, Value: value}}
			}
		}
		n, sizeErr := codec.PublishSize(v, &p)
		raw, err := codec.AppendPublish(nil, v, &p)
		if (err == nil) != (sizeErr == nil) {
			t.Fatalf("PublishSize error %v, AppendPublish error %v", sizeErr, err)
		}
		if err != nil {
			return
		}
		if n != len(raw) {
			t.Fatalf("PublishSize=%d, encoded %d", n, len(raw))
		}
		got, err := codec.NewDecoder(bytes.NewReader(raw), v, 0).Next()
		if err != nil {
			t.Fatalf("decode % x: %v", raw, err)
		}
		want := p
		if want.QoS == 0 {
			want.PacketID = 0
		}
		if g, w := view(got), view(&codec.Packet{Type: codec.TypePublish, Publish: want}); !reflect.DeepEqual(g, w) {
			t.Fatalf("round trip\n got %s\nwant %s", show(g), show(w))
		}
	})
}
