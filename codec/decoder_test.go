package codec_test

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"runtime"
	"slices"
	"testing"
	"testing/iotest"

	"github.com/nbiot-uploader/uploader/codec"
)

// must returns a function that unwraps an encoder's result, so a call reads
// must(t)(codec.AppendX(...)).
func must(t testing.TB) func([]byte, error) []byte {
	return func(b []byte, err error) []byte {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
}

// A stream of mixed packets decodes in order, one per call, then io.EOF.
func TestDecoderStream(t *testing.T) {
	for _, v := range []codec.Version{codec.V31, codec.V311, codec.V5} {
		t.Run(v.String(), func(t *testing.T) {
			var stream []byte
			stream = must(t)(codec.AppendConnack(stream, v, &codec.Connack{SessionPresent: v != codec.V31, RetainAvailable: true}))
			stream = must(t)(codec.AppendPublish(stream, v, &codec.Publish{Topic: "cmd/x", Payload: []byte("on"), QoS: 1, PacketID: 7}))
			for id := uint16(1); id <= 3; id++ {
				stream = must(t)(codec.AppendAck(stream, v, codec.TypePuback, id, 0))
			}
			stream = codec.AppendPingresp(stream)
			stream = must(t)(codec.AppendDisconnect(stream, v, nil))

			// One byte per Read exercises every partial-read path.
			d := codec.NewDecoder(iotest.OneByteReader(bytes.NewReader(stream)), v, 1024)
			want := []codec.PacketType{codec.TypeConnack, codec.TypePublish, codec.TypePuback, codec.TypePuback,
				codec.TypePuback, codec.TypePingresp, codec.TypeDisconnect}
			total := 0
			for i, typ := range want {
				p, err := d.Next()
				if err != nil {
					t.Fatalf("packet %d: %v", i, err)
				}
				if p.Type != typ {
					t.Fatalf("packet %d: Type=%v, want %v", i, p.Type, typ)
				}
				total += p.Size
				switch {
				case typ == codec.TypeConnack && p.Connack.SessionPresent != (v != codec.V31):
					t.Errorf("SessionPresent=%v", p.Connack.SessionPresent)
				case typ == codec.TypePublish && (p.Publish.Topic != "cmd/x" || string(p.Publish.Payload) != "on" || p.Publish.PacketID != 7):
					t.Errorf("Publish=%+v", p.Publish)
				case typ == codec.TypePuback && p.Ack.PacketID != uint16(i-1):
					t.Errorf("PUBACK id=%d, want %d", p.Ack.PacketID, i-1)
				}
			}
			if total != len(stream) {
				t.Errorf("sum of Size=%d, want %d", total, len(stream))
			}
			if _, err := d.Next(); !errors.Is(err, io.EOF) {
				t.Errorf("Next() at end = %v, want io.EOF", err)
			}
		})
	}
}

// A fully read packet that breaks the rules does not lose the stream.
func TestDecoderContinuesAfterMalformedPacket(t *testing.T) {
	stream := []byte{0x40, 0x02, 0x00, 0x00, 0x40, 0x02, 0x00, 0x05} // PUBACK id 0, PUBACK id 5
	d := codec.NewDecoder(bytes.NewReader(stream), codec.V311, 0)
	if _, err := d.Next(); !errors.Is(err, codec.ErrPacketIDZero) || !errors.Is(err, codec.ErrMalformedPacket) {
		t.Fatalf("first Next() = %v, want ErrPacketIDZero and ErrMalformedPacket", err)
	}
	p, err := d.Next()
	if err != nil || p.Ack.PacketID != 5 {
		t.Fatalf("second Next() = %+v, %v, want PUBACK 5", p, err)
	}
}

// Once the packet boundary is lost every later call reports the failure.
func TestDecoderFramingErrorsStick(t *testing.T) {
	tests := []struct {
		name   string
		stream []byte
		max    int
		want   error
	}{
		{"truncated body", []byte{0x32, 0x09, 0x00, 0x03}, 0, codec.ErrTruncated},
		{"truncated length", []byte{0x30, 0x80}, 0, codec.ErrTruncated},
		{"five byte length", []byte{0x30, 0x80, 0x80, 0x80, 0x80, 0x01}, 0, codec.ErrMalformedLength},
		{"too large", []byte{0x30, 0x7f}, 100, codec.ErrPacketTooLarge},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			stream := append(slices.Clip(tc.stream), 0xc0, 0x00) // a PINGREQ that must not be reached
			if errors.Is(tc.want, codec.ErrTruncated) {
				stream = tc.stream
			}
			d := codec.NewDecoder(bytes.NewReader(stream), codec.V311, tc.max)
			for i := 0; i < 2; i++ {
				if _, err := d.Next(); !errors.Is(err, tc.want) {
					t.Fatalf("Next() call %d = %v, want %v", i, err, tc.want)
				}
			}
		})
	}
}

func TestDecoderTruncatedIsUnexpectedEOF(t *testing.T) {
	_, err := codec.NewDecoder(bytes.NewReader([]byte{0x40, 0x02, 0x00}), codec.V311, 0).Next()
	if !errors.Is(err, codec.ErrTruncated) || !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("Next() = %v, want ErrTruncated and io.ErrUnexpectedEOF", err)
	}
}

// A read error at a packet boundary is returned wrapped and is not sticky:
// a read deadline that expires between packets loses nothing.
func TestDecoderReadErrorAtBoundary(t *testing.T) {
	errTimeout := errors.New("read timeout")
	r := &scriptedReader{steps: []step{{err: errTimeout}, {data: []byte{0xd0, 0x00}}}}
	d := codec.NewDecoder(r, codec.V311, 0)
	if _, err := d.Next(); !errors.Is(err, errTimeout) {
		t.Fatalf("Next() = %v, want the reader's error", err)
	}
	if p, err := d.Next(); err != nil || p.Type != codec.TypePingresp {
		t.Fatalf("Next() after timeout = %v, %v, want PINGRESP", p, err)
	}
}

// A read error inside a packet loses the boundary, so it sticks.
func TestDecoderReadErrorInsidePacket(t *testing.T) {
	errTimeout := errors.New("read timeout")
	r := &scriptedReader{steps: []step{{data: []byte{0x40, 0x02, 0x00}}, {err: errTimeout}, {data: []byte{0x01}}}}
	d := codec.NewDecoder(r, codec.V311, 0)
	for i := 0; i < 2; i++ {
		if _, err := d.Next(); !errors.Is(err, errTimeout) {
			t.Fatalf("Next() call %d = %v, want the reader's error", i, err)
		}
	}
}

type step struct {
	data []byte
	err  error
}

// scriptedReader returns each step's data or error in turn, then io.EOF.
type scriptedReader struct{ steps []step }

func (r *scriptedReader) Read(p []byte) (int, error) {
	if len(r.steps) == 0 {
		return 0, io.EOF
	}
	s := r.steps[0]
	r.steps = r.steps[1:]
	if s.err != nil {
		return 0, s.err
	}
	return copy(p, s.data), nil
}

// A forged remaining length costs memory only for the bytes that arrive.
func TestDecoderForgedLengthDoesNotAllocate(t *testing.T) {
	stream := []byte{0x30, 0xff, 0xff, 0xff, 0x7f, 0x00, 0x01, 0x61}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err := codec.NewDecoder(bytes.NewReader(stream), codec.V311, 0).Next()
	runtime.ReadMemStats(&after)
	if !errors.Is(err, codec.ErrTruncated) {
		t.Fatalf("Next() = %v, want ErrTruncated", err)
	}
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 1<<20 {
		t.Errorf("decoding 8 bytes allocated %d bytes", grew)
	}
}

// A body larger than the first read chunk grows the buffer as data arrives.
func TestDecoderLargeBody(t *testing.T) {
	payload := bytes.Repeat([]byte("0123456789"), 50_000)
	raw := must(t)(codec.AppendPublish(nil, codec.V311, &codec.Publish{Topic: "big", Payload: payload}))
	raw = append(raw, 0xd0, 0x00)
	d := codec.NewDecoder(bytes.NewReader(raw), codec.V311, len(raw))
	p, err := d.Next()
	if err != nil || !bytes.Equal(p.Publish.Payload, payload) {
		t.Fatalf("Next() = %v, payload equal %v", err, err == nil && bytes.Equal(p.Publish.Payload, payload))
	}
	if p, err := d.Next(); err != nil || p.Type != codec.TypePingresp {
		t.Fatalf("Next() after large body = %v, %v", p, err)
	}
}

func TestDecoderMaximumIsTotalSize(t *testing.T) {
	raw := []byte{0x40, 0x02, 0x00, 0x01}
	if _, err := codec.NewDecoder(bytes.NewReader(raw), codec.V311, 4).Next(); err != nil {
		t.Errorf("packet of exactly the maximum: %v", err)
	}
	if _, err := codec.NewDecoder(bytes.NewReader(raw), codec.V311, 3).Next(); !errors.Is(err, codec.ErrPacketTooLarge) {
		t.Errorf("packet one over the maximum: %v, want ErrPacketTooLarge", err)
	}
}

// NewDecoder uses a *bufio.Reader as is, so bytes it buffered stay visible.
func TestNewDecoderKeepsBufioReader(t *testing.T) {
	br := bufio.NewReader(bytes.NewReader([]byte{0xd0, 0x00, 'x'}))
	d := codec.NewDecoder(br, codec.V311, 0)
	if _, err := d.Next(); err != nil {
		t.Fatal(err)
	}
	if b, err := br.ReadByte(); err != nil || b != 'x' {
		t.Errorf("byte after packet = %q, %v, want 'x'", b, err)
	}
}

// The CONNECT carries its own level; SetVersion switches the rest.
func TestDecoderSetVersion(t *testing.T) {
	var stream []byte
	stream = must(t)(codec.AppendConnect(stream, &codec.Connect{Version: codec.V5, ClientID: "x", CleanStart: true}))
	stream = must(t)(codec.AppendPublish(stream, codec.V5, &codec.Publish{Topic: "t", ContentType: "c"}))
	d := codec.NewDecoder(bytes.NewReader(stream), codec.V311, 0)
	p, err := d.Next()
	if err != nil || p.Connect.Version != codec.V5 {
		t.Fatalf("CONNECT: %+v, %v", p, err)
	}
	d.SetVersion(p.Connect.Version)
	if d.Version() != codec.V5 {
		t.Fatalf("Version()=%v", d.Version())
	}
	if p, err = d.Next(); err != nil || p.Publish.ContentType != "c" {
		t.Fatalf("PUBLISH: %+v, %v", p, err)
	}
}

// Decoding a PUBACK stream allocates nothing once the decoder exists.
func TestDecoderPubackZeroAlloc(t *testing.T) {
	for _, v := range []codec.Version{codec.V311, codec.V5} {
		r := &repeatReader{packet: []byte{0x40, 0x02, 0x12, 0x34}}
		d := codec.NewDecoder(r, v, 64)
		allocs := testing.AllocsPerRun(1000, func() {
			if p, err := d.Next(); err != nil || p.Ack.PacketID != 0x1234 {
				t.Fatalf("Next() = %+v, %v", p, err)
			}
		})
		if allocs != 0 {
			t.Errorf("%v: %v allocs per PUBACK, want 0", v, allocs)
		}
	}
}

// Encoding a PUBLISH into a buffer with room allocates nothing.
func TestAppendPublishZeroAlloc(t *testing.T) {
	for _, v := range []codec.Version{codec.V31, codec.V311, codec.V5} {
		p := &codec.Publish{Topic: "sensors/site-0001/board-07/temperature/c1", Payload: make([]byte, 64), QoS: 1, PacketID: 9}
		buf := make([]byte, 0, 256)
		allocs := testing.AllocsPerRun(1000, func() {
			var err error
			if buf, err = codec.AppendPublish(buf[:0], v, p); err != nil {
				t.Fatal(err)
			}
		})
		if allocs != 0 {
			t.Errorf("%v: %v allocs per AppendPublish, want 0", v, allocs)
		}
	}
}

// repeatReader yields the same packet forever.
type repeatReader struct {
	packet []byte
	off    int
}

func (r *repeatReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		c := copy(p[n:], r.packet[r.off:])
		n += c
		r.off = (r.off + c) % len(r.packet)
	}
	return n, nil
}

// Strings in a decoded packet are copies and survive the next call; byte
// slices alias the buffer, as the package documentation says.
func TestDecoderStringsOutliveNext(t *testing.T) {
	var stream []byte
	stream = must(t)(codec.AppendPublish(stream, codec.V311, &codec.Publish{Topic: "first/topic", Payload: []byte("AAAA")}))
	stream = must(t)(codec.AppendPublish(stream, codec.V311, &codec.Publish{Topic: "other/topic", Payload: []byte("BBBB")}))
	d := codec.NewDecoder(bytes.NewReader(stream), codec.V311, 0)
	p, err := d.Next()
	if err != nil {
		t.Fatal(err)
	}
	topic, payload := p.Publish.Topic, p.Publish.Payload
	kept := bytes.Clone(payload)
	if _, err := d.Next(); err != nil {
		t.Fatal(err)
	}
	if topic != "first/topic" {
		t.Errorf("topic changed to %q after Next", topic)
	}
	if !bytes.Equal(kept, []byte("AAAA")) {
		t.Errorf("cloned payload = %q", kept)
	}
}

// Encoding an acknowledgement allocates nothing.
func TestAppendAckZeroAlloc(t *testing.T) {
	buf := make([]byte, 0, 16)
	allocs := testing.AllocsPerRun(1000, func() {
		buf, _ = codec.AppendAck(buf[:0], codec.V5, codec.TypePubrel, 7, 0x92)
	})
	if allocs != 0 {
		t.Errorf("%v allocs per AppendAck, want 0", allocs)
	}
}

// Nothing from one packet leaks into the next, whatever their types.
func TestDecoderNoLeftovers(t *testing.T) {
	v := codec.V5
	var stream []byte
	stream = must(t)(codec.AppendPublish(stream, v, &codec.Publish{Topic: "a", ContentType: "c", QoS: 1, PacketID: 1,
		UserProperties: []codec.UserProperty{{Key: "k", Value: "v"}}}))
	stream = must(t)(codec.AppendPacket(stream, v, &codec.Packet{Type: codec.TypePuback,
		Ack: codec.Ack{PacketID: 2, ReasonCode: 0x80, ReasonString: "no"}}))
	stream = must(t)(codec.AppendAck(stream, v, codec.TypePuback, 3, 0))
	stream = must(t)(codec.AppendPublish(stream, v, &codec.Publish{Topic: "b"}))
	d := codec.NewDecoder(bytes.NewReader(stream), v, 0)
	var got []codec.Packet
	for {
		p, err := d.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, *p)
	}
	if len(got) != 4 {
		t.Fatalf("decoded %d packets, want 4", len(got))
	}
	if a := got[2].Ack; a.ReasonCode != 0 || a.ReasonString != "" || len(a.UserProperties) != 0 {
		t.Errorf("second PUBACK kept fields of the first: %+v", a)
	}
	if got[2].Publish.Topic != "" || got[2].Publish.ContentType != "" {
		t.Errorf("PUBACK packet kept the PUBLISH: %+v", got[2].Publish)
	}
	if pub := got[3].Publish; pub.ContentType != "" || len(pub.UserProperties) != 0 || pub.PacketID != 0 {
		t.Errorf("second PUBLISH kept fields of the first: %+v", pub)
	}
}
