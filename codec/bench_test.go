package codec_test

import (
	"bytes"
	"errors"
	"io"
	"testing"

	paho "github.com/eclipse/paho.golang/packets"
	mochi "github.com/mochi-mqtt/server/v2/packets"

	"github.com/nbiot-uploader/uploader/codec"
)

// benchTopic is the 40-byte topic of the benchmark PUBLISH.
const benchTopic = "sensors/site-0001/board-07/temperature/1"

var benchPayload = bytes.Repeat([]byte{0x5a}, 64)

func checkBenchShape(b *testing.B) {
	if len(benchTopic) != 40 || len(benchPayload) != 64 {
		b.Fatalf("topic %d bytes, payload %d bytes; want 40 and 64", len(benchTopic), len(benchPayload))
	}
}

// BenchmarkAppendPublish encodes a QoS 1 PUBLISH (40-byte topic, 64-byte
// payload) into a reused buffer.
func BenchmarkAppendPublish(b *testing.B) {
	checkBenchShape(b)
	for _, v := range []codec.Version{codec.V311, codec.V5} {
		b.Run("v"+v.String(), func(b *testing.B) {
			p := &codec.Publish{Topic: benchTopic, Payload: benchPayload, QoS: 1}
			buf := make([]byte, 0, 256)
			b.ReportAllocs()
			b.SetBytes(int64(len(benchTopic) + len(benchPayload)))
			for i := 0; i < b.N; i++ {
				p.PacketID = uint16(i) | 1
				var err error
				if buf, err = codec.AppendPublish(buf[:0], v, p); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkPahoPublishEncode encodes the same PUBLISH with paho.golang's
// packets (MQTT 5, its only level) into a reused bytes.Buffer.
func BenchmarkPahoPublishEncode(b *testing.B) {
	checkBenchShape(b)
	cp := paho.NewControlPacket(paho.PUBLISH)
	pub := cp.Content.(*paho.Publish)
	pub.Topic, pub.Payload, pub.QoS = benchTopic, benchPayload, 1
	var buf bytes.Buffer
	b.ReportAllocs()
	b.SetBytes(int64(len(benchTopic) + len(benchPayload)))
	for i := 0; i < b.N; i++ {
		pub.PacketID = uint16(i) | 1
		buf.Reset()
		if _, err := cp.WriteTo(&buf); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkMochiPublishEncode encodes the same PUBLISH with mochi-mqtt's
// packets (MQTT 3.1.1) into a reused bytes.Buffer, for reference.
func BenchmarkMochiPublishEncode(b *testing.B) {
	checkBenchShape(b)
	pk := &mochi.Packet{ProtocolVersion: 4, TopicName: benchTopic, Payload: benchPayload,
		FixedHeader: mochi.FixedHeader{Type: mochi.Publish, Qos: 1}}
	var buf bytes.Buffer
	b.ReportAllocs()
	b.SetBytes(int64(len(benchTopic) + len(benchPayload)))
	for i := 0; i < b.N; i++ {
		pk.PacketID = uint16(i) | 1
		buf.Reset()
		if err := pk.PublishEncode(&buf); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodePubacks decodes a stream of 10,000 PUBACKs per operation
// with one Decoder, as the uplink does at the end of a window.
func BenchmarkDecodePubacks(b *testing.B) {
	const count = 10_000
	for _, v := range []codec.Version{codec.V311, codec.V5} {
		b.Run("v"+v.String(), func(b *testing.B) {
			var stream []byte
			for id := 1; id <= count; id++ {
				stream, _ = codec.AppendAck(stream, v, codec.TypePuback, uint16(id), 0)
			}
			r := bytes.NewReader(stream)
			d := codec.NewDecoder(r, v, 64)
			for { // warm up: the first packet sizes the decoder's buffer
				if _, err := d.Next(); err != nil {
					break
				}
			}
			b.ReportAllocs()
			b.SetBytes(int64(len(stream)))
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				r.Reset(stream)
				for n := 0; n < count; n++ {
					p, err := d.Next()
					if err != nil || p.Type != codec.TypePuback {
						b.Fatalf("packet %d: %v", n, err)
					}
				}
				if _, err := d.Next(); !errors.Is(err, io.EOF) {
					b.Fatalf("end of stream: %v", err)
				}
			}
		})
	}
}
