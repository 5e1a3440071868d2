package uplink_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/nbiot-uploader/uploader/queue"
	"github.com/nbiot-uploader/uploader/uplink"
	"github.com/nbiot-uploader/uploader/uplink/brokertest"
	"github.com/nbiot-uploader/uploader/uplink/modem"
	"github.com/nbiot-uploader/uploader/uplink/modemsim"
)

// nbiotLowerBound is what no design can beat on the NB-IoT profile for a
// given MQTT byte stream: registration + PDP activation + TCP connect + the
// data segments on air at the uplink rate (payload + 40 bytes of IPv4/TCP
// header per segment) + one round trip for the last acknowledgement
// (performance-model.md §4).
func nbiotLowerBound(cfg modemsim.Config, acc modemsim.Accounting) float64 {
	air := float64(acc.MQTTBytesUp + 40*int64(acc.CIPSENDCalls))
	return (cfg.AttachDelay + cfg.PDPDelay + cfg.RoundTrip + cfg.ConnectExtra + cfg.RoundTrip).Seconds() +
		air/float64(cfg.UplinkRate)
}

// benchQueue is a fresh queue holding n QoS 1 readings made by reading(i).
func benchQueue(b *testing.B, n int, reading func(i int) (topic string, payload []byte)) (*queue.Queue, string) {
	b.Helper()
	dir := b.TempDir()
	q, err := queue.Open(filepath.Join(dir, "queue.db"), nil)
	if err != nil {
		b.Fatal(err)
	}
	recs := make([]queue.Record, n)
	for i := range recs {
		topic, payload := reading(i)
		recs[i] = queue.Record{Topic: topic, Payload: payload, QoS: 1}
	}
	if _, err := q.Enqueue(recs...); err != nil {
		b.Fatal(err)
	}
	return q, dir
}

// originalReading is the original script's topic and a reading of its payload format.
func originalReading(i int) (string, []byte) { return originalTopic, originalPayload(i) }

// originalReadings is how many readings the original method sends for a
// window of n: all of them, unless UPLOADER_BENCH_ORIGINAL_MAX caps it (the
// original method pays the same fixed cost for every reading, so its
// per-reading figures over a sample equal those over all n; cmd/benchreport
// -quick uses the cap). The count is reported as the metric
// "original-readings" so a report can say which sample it was.
func originalReadings(b *testing.B, n int) int {
	v := os.Getenv("UPLOADER_BENCH_ORIGINAL_MAX")
	if v == "" {
		return n
	}
	limit, err := strconv.Atoi(v)
	if err != nil || limit < 1 {
		b.Fatalf("UPLOADER_BENCH_ORIGINAL_MAX=%q: want a positive count", v)
	}
	return min(n, limit)
}

// BenchmarkNBIoTWindowVsOriginal sends the same readings (the original
// script's 30-byte topic and 340-byte payload) through the simulator's
// NB-IoT profile, on its virtual clock, once as one batched window and once
// the original way, and reports radio-on seconds and bytes per reading for
// both, their ratio, and the batched window against the lower bound.
func BenchmarkNBIoTWindowVsOriginal(b *testing.B) {
	for _, n := range []int{1, 10, 100, 1000, 10000} {
		b.Run(fmt.Sprintf("readings=%d", n), func(b *testing.B) {
			broker, err := brokertest.Start(brokertest.Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer broker.Close()
			simCfg := modemsim.NBIoT()
			simCfg.VirtualClock = true
			for i := 0; i < b.N; i++ {
				// Batched: one window.
				q, dir := benchQueue(b, n, originalReading)
				sim, err := modemsim.Start(simCfg)
				if err != nil {
					b.Fatal(err)
				}
				cfg := uplink.Defaults()
				cfg.Device = sim.Path()
				cfg.APN = "nbiot"
				cfg.Broker = broker.Addr()
				cfg.ClientID = "site-bench"
				cfg.LockPath = filepath.Join(dir, "modem.lock")
				sum, err := uplink.RunWindow(context.Background(), cfg, q)
				if err != nil || sum.Acked != n {
					b.Fatalf("window: %+v %v", sum, err)
				}
				batched := sim.Accounting()
				sim.Close()
				q.Close()

				// Original: one connection per reading.
				osim, err := modemsim.Start(simCfg)
				if err != nil {
					b.Fatal(err)
				}
				port, err := modem.OpenSerial(osim.Path(), 57600)
				if err != nil {
					b.Fatal(err)
				}
				orig := &originalMethod{port: port, broker: broker.Addr()}
				on := originalReadings(b, n)
				origStart := time.Now()
				for r := 0; r < on; r++ {
					if err := orig.sendReading(context.Background(), originalTopic, originalPayload(r)); err != nil {
						b.Fatalf("original method, reading %d: %v", r, err)
					}
				}
				port.Close()
				original := osim.Accounting()
				osim.Close()

				origWall := time.Since(origStart)

				per := func(v float64) float64 { return v / float64(n) }
				perOrig := func(v float64) float64 { return v / float64(on) }
				batchedRadio, originalRadio := per(batched.RadioOnSeconds), perOrig(original.RadioOnSeconds)
				batchedAir := per(float64(batched.AirBytesUp + batched.AirBytesDown))
				originalAir := perOrig(float64(original.AirBytesUp + original.AirBytesDown))
				b.ReportMetric(batchedRadio, "batched-radio-s/reading")
				b.ReportMetric(originalRadio, "original-radio-s/reading")
				b.ReportMetric(originalRadio+originalSleepsPerReading.Seconds(), "original+sleeps-radio-s/reading")
				b.ReportMetric(originalRadio/batchedRadio, "radio-ratio")
				b.ReportMetric(per(float64(batched.UARTBytesIn)), "batched-uart-B/reading")
				b.ReportMetric(perOrig(float64(original.UARTBytesIn)), "original-uart-B/reading")
				b.ReportMetric(batchedAir, "batched-air-B/reading")
				b.ReportMetric(originalAir, "original-air-B/reading")
				b.ReportMetric(originalAir/batchedAir, "air-bytes-ratio")
				b.ReportMetric(float64(on), "original-readings")
				b.ReportMetric(origWall.Seconds(), "original-wall-s")
				bound := nbiotLowerBound(simCfg, batched)
				b.ReportMetric(bound, "lower-bound-s")
				b.ReportMetric(batched.RadioOnSeconds, "batched-radio-s")
				b.ReportMetric(batched.RadioOnSeconds/bound, "batched/bound")
			}
		})
	}
}

// BenchmarkLineRate sends windows through the simulator paced at a real
// 57600 or 115200 baud with no network latency. It reports the MQTT bytes
// per second of a whole window (bring-up included) and the marginal rate —
// the extra bytes of a large window over a small one divided by the extra
// time — which is the rate MQTT bytes move once the session streams,
// against the UART line rate (baud/10).
func BenchmarkLineRate(b *testing.B) {
	for _, baud := range []int{57600, 115200} {
		b.Run(fmt.Sprintf("baud=%d", baud), func(b *testing.B) {
			broker, err := brokertest.Start(brokertest.Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer broker.Close()
			simCfg := modemsim.Fast()
			simCfg.Baud = baud
			payload := func(i int) []byte {
				return []byte(fmt.Sprintf(`{"seq":%06d,"pm25":%5.1f,"t":"2026-11-25T06:%02d:00Z","ok":1}`, i, 12.5+float64(i%40), i%60))
			}
			window := func(n int) (bytes int64, elapsed time.Duration) {
				q, dir := benchQueue(b, n, func(i int) (string, []byte) { return "sites/site-042/air/quality/pm25-0", payload(i) })
				defer q.Close()
				sim, err := modemsim.Start(simCfg)
				if err != nil {
					b.Fatal(err)
				}
				defer sim.Close()
				cfg := uplink.Defaults()
				cfg.Device = sim.Path()
				cfg.Baud = baud
				cfg.APN = "iot"
				cfg.Broker = broker.Addr()
				cfg.ClientID = "site-bench"
				cfg.LockPath = filepath.Join(dir, "modem.lock")
				if v := os.Getenv("BENCH_INFLIGHT"); v != "" {
					cfg.InFlight, _ = strconv.Atoi(v)
				}
				start := time.Now()
				sum, err := uplink.RunWindow(context.Background(), cfg, q)
				elapsed = time.Since(start)
				if err != nil || sum.Acked != n {
					b.Fatalf("window: %+v %v", sum, err)
				}
				return sum.MQTTBytesOut, elapsed
			}
			line := float64(baud) / 10
			for i := 0; i < b.N; i++ {
				smallBytes, smallTime := window(100)
				bigBytes, bigTime := window(800)
				whole := float64(bigBytes) / bigTime.Seconds()
				marginal := float64(bigBytes-smallBytes) / (bigTime - smallTime).Seconds()
				b.ReportMetric(whole, "window-mqtt-B/s")
				b.ReportMetric(100*whole/line, "window-%-of-line")
				b.ReportMetric(marginal, "streaming-mqtt-B/s")
				b.ReportMetric(100*marginal/line, "streaming-%-of-line")
				b.ReportMetric((bigTime - time.Duration(float64(bigBytes)/marginal*float64(time.Second))).Seconds(), "fixed-cost-s")
			}
		})
	}
}
