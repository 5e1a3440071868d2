package uplink_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/nbiot-uploader/uploader/codec"
	"github.com/nbiot-uploader/uploader/queue"
	"github.com/nbiot-uploader/uploader/uplink"
	"github.com/nbiot-uploader/uploader/uplink/brokertest"
	"github.com/nbiot-uploader/uploader/uplink/pack"
)

// A packed window through a real broker: every reading arrives once, in
// packs on the pack topic with the MQTT 5 Content Type, and the queue is
// empty afterwards; the retained record goes on its own topic.
func TestWindowPacked(t *testing.T) {
	for _, v := range []codec.Version{codec.V311, codec.V5} {
		t.Run(v.String(), func(t *testing.T) {
			broker := startBroker(t, brokertest.Options{})
			q, dir := openQueue(t)
			payloads := enqueueReadings(t, q, 500, 1)
			if _, err := q.Enqueue(queue.Record{Topic: "sites/s7/config", Payload: []byte("v2"), QoS: 1, Retain: true}); err != nil {
				t.Fatal(err)
			}
			cfg := uplink.Defaults()
			cfg.Transport = uplink.TransportTCP
			cfg.Broker = broker.Addr()
			cfg.ClientID = "site-pack"
			cfg.MQTTVersion = v
			cfg.StatusTopic = ""
			cfg.LockPath = filepath.Join(dir, "modem.lock")
			cfg.Pack, cfg.PackTopic, cfg.PackMaxBytes = uplink.PackDeflate, "uploader/site-pack/pack", 1024
			sum, err := uplink.RunWindow(context.Background(), cfg, q)
			if err != nil {
				t.Fatalf("window: %+v, %v", sum, err)
			}
			if depth(t, q) != 0 {
				t.Fatalf("%d records left queued", depth(t, q))
			}
			// sum.Acked counts PUBLISHes: the packs and the retained record.
			if !broker.WaitCount(sum.Acked, 5*time.Second) {
				t.Fatalf("broker routed %d messages, window acked %d", broker.Count(), sum.Acked)
			}
			var got []string
			retained := 0
			for _, m := range broker.Messages() {
				if m.Topic == "sites/s7/config" {
					retained++
					continue
				}
				if m.Topic != cfg.PackTopic || len(m.Payload) > 1024 || m.QoS != 1 {
					t.Fatalf("message on %s, %d bytes, QoS %d", m.Topic, len(m.Payload), m.QoS)
				}
				if want := map[codec.Version]string{codec.V5: pack.ContentType}[v]; m.ContentType != want {
					t.Fatalf("content type %q, want %q", m.ContentType, want)
				}
				p, err := pack.Decode(m.Payload)
				if err != nil {
					t.Fatal(err)
				}
				for _, r := range p.Readings {
					got = append(got, string(r.Payload))
				}
			}
			if retained != 1 || len(got) != len(payloads) {
				t.Fatalf("%d retained, %d readings in packs; want 1 and %d", retained, len(got), len(payloads))
			}
			for i := range got {
				if got[i] != payloads[i] {
					t.Fatalf("reading %d: %q, want %q", i, got[i], payloads[i])
				}
			}
			if sum.Acked > 1+len(payloads)/20 {
				t.Errorf("%d PUBLISHes for %d readings: packs hold fewer than 20 readings", sum.Acked, len(payloads))
			}
		})
	}
}
