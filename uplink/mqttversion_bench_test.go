package uplink_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"testing"

	"github.com/nbiot-uploader/uploader/codec"
	"github.com/nbiot-uploader/uploader/uplink"
	"github.com/nbiot-uploader/uploader/uplink/brokertest"
	"github.com/nbiot-uploader/uploader/uplink/modemsim"
)

// siteTopics are the topics of one air-quality site, 34 to 38 bytes.
var siteTopics = []string{
	"sites/site-042/air-quality/pm25-ugm3",
	"sites/site-042/air-quality/temperature",
	"sites/site-042/air-quality/humidity",
	"sites/site-042/power/battery-volts",
}

// siteReading is a JSON reading of about 60 bytes on one of siteTopics.
func siteReading(i int) (topic string, payload []byte) {
	topic = siteTopics[i%len(siteTopics)]
	payload = fmt.Appendf(nil, `{"v":%6.2f,"t":"2026-11-25T%02d:%02d:00Z","n":%07d,"ok":1}`,
		12.5+float64(i%400)/10, (i/60)%24, i%60, i)
	return topic, payload
}

// seqPropertyBytes decodes an MQTT 5 byte stream as the broker received it
// and returns how many of its bytes the user properties of the PUBLISH
// packets take (the "seq" property the window adds), and how many PUBLISH
// packets named their topic by alias only.
func seqPropertyBytes(stream []byte) (propBytes int64, aliasOnly, publishes int, err error) {
	d := codec.NewDecoder(bytes.NewReader(stream), codec.V5, 0)
	for {
		p, err := d.Next()
		if errors.Is(err, io.EOF) {
			return propBytes, aliasOnly, publishes, nil
		}
		if err != nil {
			return 0, 0, 0, fmt.Errorf("decode the broker's stream: %w", err)
		}
		if p.Type != codec.TypePublish {
			continue
		}
		publishes++
		if p.Publish.Topic == "" && p.Publish.TopicAlias != 0 {
			aliasOnly++
		}
		bare := p.Publish
		bare.UserProperties = nil
		size, err := codec.PublishSize(codec.V5, &bare)
		if err != nil {
			return 0, 0, 0, fmt.Errorf("size of PUBLISH %d without properties: %w", p.Publish.PacketID, err)
		}
		propBytes += int64(p.Size - size)
	}
}

// BenchmarkNBIoTMQTTVersions sends one window of 1,000 site readings
// (siteReading: four topics of 34-38 bytes, ~60-byte JSON payloads, QoS 1)
// through the simulator's NB-IoT profile on its virtual clock, once with
// MQTT 3.1.1 and once with MQTT 5 in the same iteration, and reports MQTT,
// UART and air bytes per reading for both. With MQTT 5 the window uses topic
// aliases (the test broker announces a Topic Alias Maximum) and adds the
// "seq" user property to every PUBLISH; the property's share is measured by
// decoding what the broker received.
func BenchmarkNBIoTMQTTVersions(b *testing.B) {
	const n = 1000
	broker, err := brokertest.Start(brokertest.Options{TopicAliasMaximum: 16})
	if err != nil {
		b.Fatal(err)
	}
	defer broker.Close()
	simCfg := modemsim.NBIoT()
	simCfg.VirtualClock = true
	window := func(v codec.Version) (modemsim.Accounting, uplink.Summary) {
		q, dir := benchQueue(b, n, siteReading)
		defer q.Close()
		sim, err := modemsim.Start(simCfg)
		if err != nil {
			b.Fatal(err)
		}
		defer sim.Close()
		cfg := uplink.Defaults()
		cfg.Device = sim.Path()
		cfg.APN = "nbiot"
		cfg.Broker = broker.Addr()
		cfg.ClientID = "site-bench"
		cfg.MQTTVersion = v
		cfg.LockPath = filepath.Join(dir, "modem.lock")
		sum, err := uplink.RunWindow(context.Background(), cfg, q)
		if err != nil || sum.Acked != n {
			b.Fatalf("MQTT %s window: %+v %v", v, sum, err)
		}
		return sim.Accounting(), sum
	}
	for i := 0; i < b.N; i++ {
		for _, v := range []codec.Version{codec.V311, codec.V5} {
			acc, sum := window(v)
			prefix := "v311-"
			if v == codec.V5 {
				prefix = "v5-"
				props, aliasOnly, publishes, err := seqPropertyBytes(acc.MQTTStream)
				if err != nil {
					b.Fatal(err)
				}
				if publishes != n {
					b.Fatalf("the broker's stream holds %d PUBLISH packets, want %d", publishes, n)
				}
				b.ReportMetric(float64(props)/n, "v5-seq-B/reading")
				b.ReportMetric(float64(acc.MQTTBytesUp-props)/n, "v5-noseq-mqtt-B/reading")
				b.ReportMetric(100*float64(aliasOnly)/n, "v5-alias-only-%")
			}
			b.ReportMetric(float64(acc.MQTTBytesUp)/n, prefix+"mqtt-B/reading")
			b.ReportMetric(float64(sum.MQTTBytesIn)/n, prefix+"mqtt-in-B/reading")
			b.ReportMetric(float64(acc.UARTBytesIn)/n, prefix+"uart-B/reading")
			b.ReportMetric(float64(acc.AirBytesUp+acc.AirBytesDown)/n, prefix+"air-B/reading")
			b.ReportMetric(acc.RadioOnSeconds/n, prefix+"radio-s/reading")
		}
	}
}
