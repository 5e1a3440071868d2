package session_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nbiot-uploader/uploader/codec"
	"github.com/nbiot-uploader/uploader/uplink/session"
)

// benchRecords returns n QoS q records over four topics of exactly topicLen
// bytes with payloads of exactly payloadLen bytes.
func benchRecords(n, topicLen, payloadLen int, qos byte) []session.Record {
	topics := make([]string, 4)
	for i := range topics {
		t := fmt.Sprintf("s/%d/", i)
		topics[i] = t + strings.Repeat("x", topicLen-len(t))
	}
	payload := []byte(strings.Repeat("7", payloadLen))
	recs := make([]session.Record, n)
	for i := range recs {
		recs[i] = session.Record{Seq: uint64(i + 1), Topic: topics[i%len(topics)], Payload: payload, QoS: qos}
	}
	return recs
}

type wireVariant struct {
	name    string
	v       codec.Version
	aliases bool
	seq     bool
}

var wireVariants = []wireVariant{
	{"mqtt3.1.1", codec.V311, false, false},
	{"mqtt5", codec.V5, false, false},
	{"mqtt5-aliases", codec.V5, true, false},
	{"mqtt5-aliases-seq", codec.V5, true, true},
}

// BenchmarkWireBytes reports the MQTT bytes per record written in one
// session (CONNECT, PUBLISH, PUBREL, PINGREQ, DISCONNECT; no TCP/IP
// headers), for a window of 60 records and for a long one of 1000.
func BenchmarkWireBytes(b *testing.B) {
	broker := startMochi(b, nil)
	for _, size := range []struct{ t, p int }{{20, 20}, {40, 64}} {
		for _, n := range []int{60, 1000} {
			for _, wv := range wireVariants {
				name := fmt.Sprintf("T%dP%d/N%d/%s", size.t, size.p, n, wv.name)
				b.Run(name, func(b *testing.B) {
					recs := benchRecords(n, size.t, size.p, 1)
					cfg := testConfig(wv.v)
					cfg.ClientID = "board-0001"
					cfg.TopicAliases, cfg.SeqProperty = wv.aliases, wv.seq
					var res session.Result
					for b.Loop() {
						var err error
						res, err = session.Run(context.Background(), broker.dial(b), newMemStore(recs), cfg)
						if err != nil || res.Acked != n {
							b.Fatalf("Run: %v, %d of %d acked", err, res.Acked, n)
						}
					}
					b.ReportMetric(float64(res.BytesOut)/float64(n), "B/record")
					b.ReportMetric(float64(res.BytesIn)/float64(n), "Bin/record")
					b.ReportMetric(float64(res.Writes), "writes")
				})
			}
		}
	}
}

// BenchmarkThroughput reports records per second through one loopback
// session to mochi (1000 records of T=40/P=64 per session, chunk 1460 B,
// in-flight window 64, an in-memory store).
func BenchmarkThroughput(b *testing.B) {
	broker := startMochi(b, nil)
	const n = 1000
	for _, v := range []codec.Version{codec.V311, codec.V5} {
		for _, qos := range []byte{0, 1, 2} {
			b.Run(fmt.Sprintf("mqtt%s/qos%d", v, qos), func(b *testing.B) {
				recs := benchRecords(n, 40, 64, qos)
				cfg := testConfig(v)
				var total int
				var elapsed time.Duration
				for i := 0; b.Loop(); i++ {
					cfg.ClientID = fmt.Sprintf("board-%d", i)
					conn := broker.dial(b)
					start := time.Now()
					res, err := session.Run(context.Background(), conn, newMemStore(recs), cfg)
					elapsed += time.Since(start)
					_ = conn.Close()
					if err != nil || res.Acked != n {
						b.Fatalf("Run: %v, %d of %d acked", err, res.Acked, n)
					}
					total += res.Acked
				}
				b.ReportMetric(float64(total)/elapsed.Seconds(), "records/s")
			})
		}
	}
}
