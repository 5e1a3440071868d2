package codec_test

import (
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/nbiot-uploader/uploader/codec"
)

func TestValidateTopicName(t *testing.T) {
	tests := []struct {
		name  string
		topic string
		want  error
	}{
		{"plain", "sensors/site1/temp", nil},
		{"single level", "a", nil},
		{"unicode", "capteurs/été", nil},
		{"max length", strings.Repeat("a", 65535), nil},
		{"empty", "", codec.ErrTopicEmpty},
		{"too long", strings.Repeat("a", 65536), codec.ErrTopicTooLong},
		{"invalid utf8", "a/\xff", codec.ErrTopicInvalidUTF8},
		{"encoded surrogate", "\xed\xa0\x80", codec.ErrTopicInvalidUTF8},
		{"null char", "a\x00b", codec.ErrTopicNullChar},
		{"plus", "a/+/b", codec.ErrTopicWildcard},
		{"hash", "a/#", codec.ErrTopicWildcard},
		{"hash inside level", "a#", codec.ErrTopicWildcard},
		// What mosquitto 2.x refuses (mosquitto_validate_utf8 and
		// mosquitto_pub_topic_check): the encoder refuses it too.
		{"control U+0001", "a\x01b", codec.ErrTopicControlChar},
		{"control tab", "a\tb", codec.ErrTopicControlChar},
		{"control newline", "a/b\n", codec.ErrTopicControlChar},
		{"control U+001F", "\x1f", codec.ErrTopicControlChar},
		{"control DEL U+007F", "a\x7f", codec.ErrTopicControlChar},
		{"control U+0080", "a\u0080", codec.ErrTopicControlChar},
		{"control U+009F", "a\u009f", codec.ErrTopicControlChar},
		{"U+00A0 allowed", "a\u00a0", nil},
		{"space allowed", "a b", nil},
		{"noncharacter U+FFFE", "a\ufffe", codec.ErrTopicNonCharacter},
		{"noncharacter U+FFFF", "a\uffff", codec.ErrTopicNonCharacter},
		{"noncharacter U+FDD0", "\ufdd0", codec.ErrTopicNonCharacter},
		{"noncharacter U+FDEF", "x/\ufdef", codec.ErrTopicNonCharacter},
		{"noncharacter U+1FFFE", "\U0001fffe", codec.ErrTopicNonCharacter},
		{"noncharacter U+10FFFF", "\U0010ffff", codec.ErrTopicNonCharacter},
		{"U+FDCF allowed", "\ufdcf", nil},
		{"U+FDF0 allowed", "\ufdf0", nil},
		{"U+FFFD allowed", "\ufffd", nil},
		{"U+10FFFD allowed", "\U0010fffd", nil},
		{"overlong NUL", "a\xc0\x80", codec.ErrTopicInvalidUTF8},
		{"truncated sequence", "a\xe2\x82", codec.ErrTopicInvalidUTF8},
		{"201 levels", strings.Repeat("a/", 200) + "a", nil},
		{"202 levels", strings.Repeat("a/", 201) + "a", codec.ErrTopicTooDeep},
		{"202 empty levels", strings.Repeat("/", 201), codec.ErrTopicTooDeep},
		{"202 levels non-ASCII", strings.Repeat("é/", 201), codec.ErrTopicTooDeep},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := codec.ValidateTopicName(tc.topic); !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Errorf("ValidateTopicName()=%v, want %v", err, tc.want)
			}
		})
	}
}

func TestValidateTopicFilter(t *testing.T) {
	tests := []struct {
		filter string
		want   error
	}{
		{"a/b", nil},
		{"#", nil},
		{"+", nil},
		{"a/+/c", nil},
		{"a/#", nil},
		{"+/+/#", nil},
		{"/", nil},
		{"", codec.ErrTopicEmpty},
		{"a/#/c", codec.ErrTopicFilterInvalid},
		{"a#", codec.ErrTopicFilterInvalid},
		{"a/b+", codec.ErrTopicFilterInvalid},
		{"+a", codec.ErrTopicFilterInvalid},
		{"a\x00", codec.ErrTopicNullChar},
		{"a/\x01/#", codec.ErrTopicControlChar},
		{"+/\ufffe", codec.ErrTopicNonCharacter},
		{strings.Repeat("+/", 201) + "#", codec.ErrTopicTooDeep},
	}
	for _, tc := range tests {
		t.Run(tc.filter, func(t *testing.T) {
			if err := codec.ValidateTopicFilter(tc.filter); !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Errorf("ValidateTopicFilter(%q)=%v, want %v", tc.filter, err, tc.want)
			}
		})
	}
}

// A topic error names the topic once, escaped and shortened, so the command
// line can print it as one line; it names where the offending character is.
func TestTopicErrorQuotesTopicOnceOnOneLine(t *testing.T) {
	tests := []struct {
		topic string
		want  []string
	}{
		{"a/\nb", []string{`"a/\nb"`, "control character U+000A at byte 2"}},
		{"a\x00", []string{`"a\x00"`, "U+0000 at byte 1"}},
		{"é\xff", []string{`"é\xff"`, "UTF-8 at byte 2 (0xff)"}},
		{"x/\ufffe", []string{`"x/\ufffe"`, "non-character U+FFFE at byte 2"}},
		{"a/+", []string{`"a/+"`, "'+' at byte 2"}},
		{strings.Repeat("é", 40) + "\n", []string{`"` + strings.Repeat("é", 32) + `"…`, "(81 bytes)", "at byte 80"}},
	}
	for _, tc := range tests {
		err := codec.ValidateTopicName(tc.topic)
		if err == nil {
			t.Fatalf("ValidateTopicName(%q) = nil", tc.topic)
		}
		msg := err.Error()
		for _, w := range tc.want {
			if !strings.Contains(msg, w) {
				t.Errorf("ValidateTopicName(%q) = %q, want it to contain %q", tc.topic, msg, w)
			}
		}
		if strings.ContainsAny(msg, "\n\r") || strings.Count(msg, "topic \"") != 1 {
			t.Errorf("ValidateTopicName(%q) = %q: want the topic quoted once, on one line", tc.topic, msg)
		}
	}
}

// The encoder refuses what ValidateTopicName refuses, with the same sentinel:
// a control character in a PUBLISH topic never reaches a broker.
func TestEncodersRefuseTopicsStrictBrokersRefuse(t *testing.T) {
	for _, topic := range []string{"a\x01", "a\u0085", "a\ufdd0", strings.Repeat("/", 201)} {
		want := codec.ValidateTopicName(topic)
		for _, v := range []codec.Version{codec.V31, codec.V311, codec.V5} {
			p := codec.Publish{Topic: topic, Payload: []byte("x"), QoS: 1, PacketID: 1}
			if _, err := codec.AppendPublish(nil, v, &p); err == nil || !errors.Is(err, errors.Unwrap(want)) {
				t.Errorf("AppendPublish(v%d, %q) = %v, want %v", v, topic, err, want)
			}
			if _, err := codec.PublishSize(v, &p); err == nil {
				t.Errorf("PublishSize(v%d, %q) accepted it", v, topic)
			}
			c := codec.Connect{Version: v, ClientID: "c", Will: &codec.Will{Topic: topic, Payload: []byte("x")}}
			if _, err := codec.AppendConnect(nil, &c); err == nil {
				t.Errorf("AppendConnect(v%d) accepted will topic %q", v, topic)
			}
		}
	}
}

// Encoders refuse invalid packets with an errors.Is-able sentinel, their size
// function returns the same error, and dst is returned unchanged.
func TestEncodeErrors(t *testing.T) {
	v311, v5 := codec.V311, codec.V5
	big := make([]byte, codec.MaxRemainingLength)
	type encodeFunc func(dst []byte) ([]byte, error)
	type sizeFunc func() (int, error)
	publish := func(v codec.Version, p codec.Publish) (encodeFunc, sizeFunc) {
		return func(dst []byte) ([]byte, error) { return codec.AppendPublish(dst, v, &p) },
			func() (int, error) { return codec.PublishSize(v, &p) }
	}
	connect := func(c codec.Connect) (encodeFunc, sizeFunc) {
		return func(dst []byte) ([]byte, error) { return codec.AppendConnect(dst, &c) },
			func() (int, error) { return codec.ConnectSize(&c) }
	}
	ack := func(v codec.Version, typ codec.PacketType, id uint16, reason byte) (encodeFunc, sizeFunc) {
		return func(dst []byte) ([]byte, error) { return codec.AppendAck(dst, v, typ, id, reason) },
			func() (int, error) { return codec.AckSize(v, typ, id, reason) }
	}
	subscribe := func(v codec.Version, s codec.Subscribe) (encodeFunc, sizeFunc) {
		return func(dst []byte) ([]byte, error) { return codec.AppendSubscribe(dst, v, &s) },
			func() (int, error) { return codec.SubscribeSize(v, &s) }
	}
	disconnect := func(v codec.Version, d *codec.Disconnect) (encodeFunc, sizeFunc) {
		return func(dst []byte) ([]byte, error) { return codec.AppendDisconnect(dst, v, d) },
			func() (int, error) { return codec.DisconnectSize(v, d) }
	}
	type pair struct {
		enc  encodeFunc
		size sizeFunc
	}
	mk := func(e encodeFunc, s sizeFunc) pair { return pair{e, s} }
	tests := []struct {
		name string
		p    pair
		want error
	}{
		{"publish empty topic", mk(publish(v311, codec.Publish{})), codec.ErrTopicEmpty},
		{"publish empty topic v5 without alias", mk(publish(v5, codec.Publish{})), codec.ErrTopicEmpty},
		{"publish topic too long", mk(publish(v311, codec.Publish{Topic: strings.Repeat("t", 65536)})), codec.ErrTopicTooLong},
		{"publish invalid utf8", mk(publish(v311, codec.Publish{Topic: "\xc3"})), codec.ErrTopicInvalidUTF8},
		{"publish null char", mk(publish(v311, codec.Publish{Topic: "a\x00"})), codec.ErrTopicNullChar},
		{"publish wildcard", mk(publish(v311, codec.Publish{Topic: "a/+"})), codec.ErrTopicWildcard},
		{"publish qos 3", mk(publish(v311, codec.Publish{Topic: "a", QoS: 3, PacketID: 1})), codec.ErrInvalidQoS},
		{"publish qos1 id 0", mk(publish(v311, codec.Publish{Topic: "a", QoS: 1})), codec.ErrPacketIDZero},
		{"publish qos2 id 0", mk(publish(v5, codec.Publish{Topic: "a", QoS: 2})), codec.ErrPacketIDZero},
		{"publish qos0 dup", mk(publish(v311, codec.Publish{Topic: "a", Dup: true})), codec.ErrMalformedPacket},
		{"publish v311 topic alias", mk(publish(v311, codec.Publish{Topic: "a", TopicAlias: 1})), codec.ErrPropertyNotAllowed},
		{"publish v31 user property", mk(publish(codec.V31, codec.Publish{Topic: "a", UserProperties: []codec.UserProperty{{Key: "k"}}})), codec.ErrPropertyNotAllowed},
		{"publish v311 expiry", mk(publish(v311, codec.Publish{Topic: "a", HasMessageExpiry: true})), codec.ErrPropertyNotAllowed},
		{"publish v5 bad user property", mk(publish(v5, codec.Publish{Topic: "a", UserProperties: []codec.UserProperty{{Key: "\x00"}}})), codec.ErrInvalidString},
		{"publish v5 long content type", mk(publish(v5, codec.Publish{Topic: "a", ContentType: strings.Repeat("c", 65536)})), codec.ErrStringTooLong},
		{"publish v5 payload format 2", mk(publish(v5, codec.Publish{Topic: "a", HasPayloadFormat: true, PayloadFormat: 2})), codec.ErrMalformedPacket},
		{"publish too large", mk(publish(v311, codec.Publish{Topic: "a", Payload: big})), codec.ErrPacketTooLarge},
		{"publish bad version", mk(publish(6, codec.Publish{Topic: "a"})), codec.ErrUnsupportedVersion},
		{"connect bad version", mk(connect(codec.Connect{Version: 2, ClientID: "a"})), codec.ErrUnsupportedVersion},
		{"connect v311 empty id without clean", mk(connect(codec.Connect{Version: v311})), codec.ErrMalformedPacket},
		{"connect v31 empty id", mk(connect(codec.Connect{Version: codec.V31, CleanStart: true})), codec.ErrMalformedPacket},
		{"connect v311 password without user", mk(connect(codec.Connect{Version: v311, ClientID: "a", HasPassword: true})), codec.ErrMalformedPacket},
		{"connect username without flag", mk(connect(codec.Connect{Version: v311, ClientID: "a", Username: "u"})), codec.ErrMalformedPacket},
		{"connect client id invalid", mk(connect(codec.Connect{Version: v311, ClientID: "\xff"})), codec.ErrInvalidString},
		{"connect client id too long", mk(connect(codec.Connect{Version: v311, ClientID: strings.Repeat("c", 65536)})), codec.ErrStringTooLong},
		{"connect will wildcard", mk(connect(codec.Connect{Version: v311, ClientID: "a", Will: &codec.Will{Topic: "#"}})), codec.ErrTopicWildcard},
		{"connect will qos 3", mk(connect(codec.Connect{Version: v311, ClientID: "a", Will: &codec.Will{Topic: "w", QoS: 3}})), codec.ErrInvalidQoS},
		{"connect v311 session expiry", mk(connect(codec.Connect{Version: v311, ClientID: "a", SessionExpiryInterval: 1})), codec.ErrPropertyNotAllowed},
		{"connect v311 will delay", mk(connect(codec.Connect{Version: v311, ClientID: "a", Will: &codec.Will{Topic: "w", DelayInterval: 1}})), codec.ErrPropertyNotAllowed},
		{"connect password too long", mk(connect(codec.Connect{Version: v5, ClientID: "a", HasPassword: true, Password: make([]byte, 65536)})), codec.ErrStringTooLong},
		{"ack id 0", mk(ack(v311, codec.TypePuback, 0, 0)), codec.ErrPacketIDZero},
		{"ack v311 reason", mk(ack(v311, codec.TypePuback, 1, 0x80)), codec.ErrPropertyNotAllowed},
		{"ack wrong type", mk(ack(v311, codec.TypePublish, 1, 0)), codec.ErrMalformedPacket},
		{"subscribe id 0", mk(subscribe(v311, codec.Subscribe{Subscriptions: []codec.Subscription{{Filter: "a"}}})), codec.ErrPacketIDZero},
		{"subscribe no filters", mk(subscribe(v311, codec.Subscribe{PacketID: 1})), codec.ErrMalformedPacket},
		{"subscribe bad filter", mk(subscribe(v311, codec.Subscribe{PacketID: 1, Subscriptions: []codec.Subscription{{Filter: "a/#/b"}}})), codec.ErrTopicFilterInvalid},
		{"subscribe qos 3", mk(subscribe(v311, codec.Subscribe{PacketID: 1, Subscriptions: []codec.Subscription{{Filter: "a", QoS: 3}}})), codec.ErrInvalidQoS},
		{"subscribe v311 no local", mk(subscribe(v311, codec.Subscribe{PacketID: 1, Subscriptions: []codec.Subscription{{Filter: "a", NoLocal: true}}})), codec.ErrPropertyNotAllowed},
		{"subscribe retain handling 3", mk(subscribe(v5, codec.Subscribe{PacketID: 1, Subscriptions: []codec.Subscription{{Filter: "a", RetainHandling: 3}}})), codec.ErrMalformedPacket},
		{"disconnect v311 reason", mk(disconnect(v311, &codec.Disconnect{ReasonCode: 0x04})), codec.ErrPropertyNotAllowed},
		{"disconnect v5 bad reason string", mk(disconnect(v5, &codec.Disconnect{ReasonString: "\xff"})), codec.ErrInvalidString},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dst := []byte{1, 2, 3}
			got, err := tc.p.enc(dst)
			if !errors.Is(err, tc.want) {
				t.Errorf("encode error = %v, want %v", err, tc.want)
			}
			if len(got) != len(dst) {
				t.Errorf("encode appended %d bytes on error", len(got)-len(dst))
			}
			if n, serr := tc.p.size(); !errors.Is(serr, tc.want) || n != 0 {
				t.Errorf("size = %d, %v, want 0, %v", n, serr, tc.want)
			}
		})
	}
}

func TestCheckSize(t *testing.T) {
	tests := []struct {
		size int
		max  uint32
		want error
	}{
		{100, 0, nil},
		{100, 100, nil},
		{101, 100, codec.ErrPacketTooLarge},
		{codec.MaxPacketSize, 0, nil},
	}
	for _, tc := range tests {
		if err := codec.CheckSize(tc.size, tc.max); !errors.Is(err, tc.want) || (err == nil) != (tc.want == nil) {
			t.Errorf("CheckSize(%d, %d)=%v, want %v", tc.size, tc.max, err, tc.want)
		}
	}
}

// The largest encodable PUBLISH is accepted and one byte more is refused.
// User properties that share one 65,535-byte string reach the limit without
// holding 256 MiB in memory.
func TestPublishRemainingLengthLimit(t *testing.T) {
	long := strings.Repeat("k", 65535)
	ups := make([]codec.UserProperty, 2047)
	for i := range ups {
		ups[i] = codec.UserProperty{Key: long, Value: long}
	}
	const propLen = 2047 * (1 + 2 + 65535 + 2 + 65535)
	fixed := 2 + 1 + 4 + propLen // topic "a", 4-byte property length, properties
	p := codec.Publish{Topic: "a", UserProperties: ups, Payload: make([]byte, codec.MaxRemainingLength-fixed)}
	n, err := codec.PublishSize(codec.V5, &p)
	if err != nil || n != codec.MaxPacketSize {
		t.Fatalf("PublishSize()=%d, %v, want %d", n, err, codec.MaxPacketSize)
	}
	p.Payload = append(p.Payload, 0)
	if _, err := codec.PublishSize(codec.V5, &p); !errors.Is(err, codec.ErrPacketTooLarge) {
		t.Fatalf("PublishSize() one byte over = %v, want ErrPacketTooLarge", err)
	}
	if _, err := codec.AppendPublish(nil, codec.V5, &p); !errors.Is(err, codec.ErrPacketTooLarge) {
		t.Fatalf("AppendPublish() one byte over = %v, want ErrPacketTooLarge", err)
	}
}

func TestVarint(t *testing.T) {
	tests := []struct {
		n    int
		want []byte
	}{
		{0, []byte{0x00}},
		{127, []byte{0x7f}},
		{128, []byte{0x80, 0x01}},
		{16383, []byte{0xff, 0x7f}},
		{16384, []byte{0x80, 0x80, 0x01}},
		{2097151, []byte{0xff, 0xff, 0x7f}},
		{2097152, []byte{0x80, 0x80, 0x80, 0x01}},
		{268435455, []byte{0xff, 0xff, 0xff, 0x7f}},
	}
	for _, tc := range tests {
		got, err := codec.AppendVarint(nil, tc.n)
		if err != nil || string(got) != string(tc.want) {
			t.Errorf("AppendVarint(%d)=% x, %v, want % x", tc.n, got, err, tc.want)
		}
		v, n, err := codec.DecodeVarint(append(got, 0xee))
		if err != nil || v != tc.n || n != len(tc.want) {
			t.Errorf("DecodeVarint(% x)=%d, %d, %v", got, v, n, err)
		}
	}
	if _, err := codec.AppendVarint(nil, codec.MaxRemainingLength+1); !errors.Is(err, codec.ErrMalformedLength) {
		t.Errorf("AppendVarint(max+1) error = %v", err)
	}
	if _, err := codec.AppendVarint(nil, -1); !errors.Is(err, codec.ErrMalformedLength) {
		t.Errorf("AppendVarint(-1) error = %v", err)
	}
	if _, _, err := codec.DecodeVarint([]byte{0x80, 0x80, 0x80, 0x80, 0x00}); !errors.Is(err, codec.ErrMalformedLength) {
		t.Errorf("DecodeVarint(5 bytes) error = %v", err)
	}
	_, _, err := codec.DecodeVarint([]byte{0xff})
	if !errors.Is(err, codec.ErrTruncated) || !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("DecodeVarint(truncated) error = %v, want ErrTruncated and io.ErrUnexpectedEOF", err)
	}
	if v, n, err := codec.DecodeVarint([]byte{0x80, 0x00}); err != nil || v != 0 || n != 2 {
		t.Errorf("DecodeVarint(non-minimal 0)=%d, %d, %v", v, n, err)
	}
}

func TestParseVersion(t *testing.T) {
	tests := []struct {
		in   string
		want codec.Version
	}{
		{"3.1", codec.V31}, {"3", codec.V31}, {"3.1.1", codec.V311}, {"4", codec.V311}, {"5", codec.V5}, {"5.0", codec.V5},
	}
	for _, tc := range tests {
		got, err := codec.ParseVersion(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("ParseVersion(%q)=%v, %v, want %v", tc.in, got, err, tc.want)
		}
		if back, err := codec.ParseVersion(got.String()); err != nil || back != got {
			t.Errorf("ParseVersion(%v.String())=%v, %v", got, back, err)
		}
	}
	for _, bad := range []string{"", "3.2", "6", "v5"} {
		if _, err := codec.ParseVersion(bad); !errors.Is(err, codec.ErrUnsupportedVersion) {
			t.Errorf("ParseVersion(%q) error = %v, want ErrUnsupportedVersion", bad, err)
		}
	}
}

func TestPacketTypeString(t *testing.T) {
	seen := map[string]bool{}
	for typ := codec.TypeConnect; typ <= codec.TypeAuth; typ++ {
		s := typ.String()
		if s == "" || seen[s] || strings.HasPrefix(s, "PacketType(") {
			t.Errorf("%d.String()=%q", byte(typ), s)
		}
		seen[s] = true
	}
	if got := codec.PacketType(0).String(); got != "PacketType(0)" {
		t.Errorf("PacketType(0).String()=%q", got)
	}
}

func TestConnackErr(t *testing.T) {
	tests := []struct {
		v    codec.Version
		c    codec.Connack
		want string
	}{
		{codec.V311, codec.Connack{ReasonCode: 1}, "connection refused: unacceptable protocol version"},
		{codec.V311, codec.Connack{ReasonCode: 2}, "connection refused: identifier rejected"},
		{codec.V31, codec.Connack{ReasonCode: 3}, "connection refused: server unavailable"},
		{codec.V311, codec.Connack{ReasonCode: 4}, "connection refused: bad user name or password"},
		{codec.V311, codec.Connack{ReasonCode: 5}, "connection refused: not authorized"},
		{codec.V311, codec.Connack{ReasonCode: 9}, "connection refused: return code 0x09"},
		{codec.V5, codec.Connack{ReasonCode: 0x87}, "connection refused: not authorized"},
		{codec.V5, codec.Connack{ReasonCode: 0x9F, ReasonString: "slow down"}, `connection refused: connection rate exceeded: "slow down"`},
		{codec.V5, codec.Connack{ReasonCode: 0x01}, "connection refused: unacceptable protocol version"},
	}
	for _, tc := range tests {
		err := tc.c.Err(tc.v)
		var ce *codec.ConnackError
		if !errors.As(err, &ce) || ce.Code != tc.c.ReasonCode || ce.Version != tc.v {
			t.Fatalf("Err()=%v, want *ConnackError with code %d", err, tc.c.ReasonCode)
		}
		if !errors.Is(err, codec.ErrConnectionRefused) {
			t.Errorf("Err()=%v does not wrap ErrConnectionRefused", err)
		}
		if got := err.Error(); got != tc.want {
			t.Errorf("Error()=%q, want %q", got, tc.want)
		}
	}
	if err := (&codec.Connack{}).Err(codec.V5); err != nil {
		t.Errorf("accepted Connack.Err()=%v", err)
	}
}

// Every reason code the MQTT 5 spec defines has its own text.
func TestReasonCodeTextUnique(t *testing.T) {
	seen := map[string]byte{}
	for c := 0x80; c <= 0xA2; c++ {
		s := codec.ReasonCodeText(byte(c))
		if prev, ok := seen[s]; ok {
			t.Errorf("codes 0x%02X and 0x%02X share text %q", prev, c, s)
		}
		seen[s] = byte(c)
	}
}
