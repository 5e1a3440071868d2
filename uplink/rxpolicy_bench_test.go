package uplink_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/nbiot-uploader/uploader/uplink"
	"github.com/nbiot-uploader/uploader/uplink/brokertest"
	"github.com/nbiot-uploader/uploader/uplink/modem"
	"github.com/nbiot-uploader/uploader/uplink/modemsim"
)

// rxTopic is the 30-byte topic of issue 13's window.
const rxTopic = "sites/site-042/air/pm25-ugm3/a"

// rxReading is a reading of issue 13's window: rxTopic and a JSON payload of
// 41 bytes.
func rxReading(i int) (string, []byte) {
	return rxTopic, fmt.Appendf(nil, `{"v":%6.2f,"t":"2026-11-25T%02d:%02d:00Z"}`,
		12.5+float64(i%400)/10, (i/60)%24, i%60)
}

// rxLinks are the links of the receive-policy benchmark: the simulator's
// NB-IoT profile, and the link of issue 13 (20 kbit/s both ways, 1 s round
// trip, 5 s attach, no separate PDP activation or handshake surcharge).
func rxLinks() []struct {
	name string
	cfg  modemsim.Config
} {
	link := modemsim.NBIoT()
	link.DownlinkRate = 2500
	link.PDPDelay = 0
	link.ConnectExtra = 0
	return []struct {
		name string
		cfg  modemsim.Config
	}{{"nbiot", modemsim.NBIoT()}, {"20kbit-1s", link}}
}

// originalRxSample is how many readings the original method sends per
// sub-benchmark: it pays the same fixed cost for every reading and never
// reads from the module (QoS 0, normal send), so its per-reading figures
// over a sample equal those over any number of readings.
const originalRxSample = 10

// BenchmarkRxURCPolicies runs one window of issue 13's readings (30-byte
// topic, 41-byte payloads, QoS 1, MQTT 3.1.1) under each "+CIPRXGET: 1"
// policy of the simulator, on the virtual clock with Config.HostTime (so
// the driver's own waits count as radio-on time), and reports the window
// against the lower bound, the receive side's cost (AT commands, UART
// bytes and UART time of AT+CIPRXGET exchanges) and the original method's
// radio time per reading against the window's under the same policy.
//
// poll-uart-% is the UART time of the AT+CIPRXGET exchanges (their bytes at
// the line rate plus the module's turnaround per command; payload excluded)
// as a share of the window's radio-on time.
func BenchmarkRxURCPolicies(b *testing.B) {
	broker, err := brokertest.Start(brokertest.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer broker.Close()
	for _, link := range rxLinks() {
		for _, policy := range modemsim.RxURCPolicies() {
			for _, n := range []int{100, 1000, 10000} {
				name := fmt.Sprintf("link=%s/urc=%s/readings=%d", link.name, policy, n)
				b.Run(name, func(b *testing.B) {
					simCfg := link.cfg
					simCfg.VirtualClock = true
					simCfg.HostTime = true
					simCfg.Variants.RxURC = policy
					for i := 0; i < b.N; i++ {
						acc := rxWindow(b, simCfg, broker.Addr(), n)
						bound := nbiotLowerBound(simCfg, acc)
						b.ReportMetric(acc.RadioOnSeconds, "radio-s")
						b.ReportMetric(bound, "lower-bound-s")
						b.ReportMetric(acc.RadioOnSeconds/bound, "window/bound")
						b.ReportMetric(float64(acc.MQTTBytesUp), "mqtt-B-up")
						b.ReportMetric(float64(acc.ATCommands), "at-commands")
						b.ReportMetric(float64(acc.RxPolls), "rx-polls")
						b.ReportMetric(float64(acc.RxReads), "rx-reads")
						b.ReportMetric(float64(acc.RxEmptyReads), "rx-empty-reads")
						b.ReportMetric(float64(acc.RxURCs), "rx-urcs")
						b.ReportMetric(float64(acc.RxUARTBytes), "rx-uart-B")
						b.ReportMetric(100*acc.RxUARTSeconds/acc.RadioOnSeconds, "poll-uart-%")
						orig := rxOriginal(b, simCfg, broker.Addr(), min(n, originalRxSample))
						perReading := acc.RadioOnSeconds / float64(n)
						b.ReportMetric(orig/perReading, "original-radio-ratio")
					}
				})
			}
		}
	}
}

// rxWindow runs one window of n rxReadings and returns the module's accounting.
func rxWindow(b *testing.B, simCfg modemsim.Config, broker string, n int) modemsim.Accounting {
	b.Helper()
	q, dir := benchQueue(b, n, rxReading)
	defer q.Close()
	sim, err := modemsim.Start(simCfg)
	if err != nil {
		b.Fatal(err)
	}
	defer sim.Close()
	cfg := uplink.Defaults()
	cfg.Device = sim.Path()
	cfg.APN = "nbiot"
	cfg.Broker = broker
	cfg.ClientID = "site-bench"
	cfg.LockPath = filepath.Join(dir, "modem.lock")
	if v := os.Getenv("BENCH_INFLIGHT"); v != "" {
		cfg.InFlight, _ = strconv.Atoi(v)
	}
	sum, err := uplink.RunWindow(context.Background(), cfg, q)
	if err != nil || sum.Acked != n {
		b.Fatalf("window: %+v %v", sum, err)
	}
	return sim.Accounting()
}

// rxOriginal sends n readings the original way and returns the radio-on
// seconds per reading.
func rxOriginal(b *testing.B, simCfg modemsim.Config, broker string, n int) float64 {
	b.Helper()
	sim, err := modemsim.Start(simCfg)
	if err != nil {
		b.Fatal(err)
	}
	defer sim.Close()
	port, err := modem.OpenSerial(sim.Path(), 57600)
	if err != nil {
		b.Fatal(err)
	}
	defer port.Close()
	orig := &originalMethod{port: port, broker: broker}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	for r := 0; r < n; r++ {
		topic, payload := rxReading(r)
		if err := orig.sendReading(ctx, topic, payload); err != nil {
			b.Fatalf("original method, reading %d: %v", r, err)
		}
	}
	return sim.Accounting().RadioOnSeconds / float64(n)
}
