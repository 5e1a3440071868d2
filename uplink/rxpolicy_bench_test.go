package uplink_test

import (
	"cmp"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nbiot-uploader/uploader/codec"
	"github.com/nbiot-uploader/uploader/queue"
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

// rxProtocols are the protocols of the receive-policy benchmark: MQTT 3.1.1
// (a 4-byte PUBACK per reading), MQTT 5 (the broker echoes the window's
// "seq" user property in every PUBACK: about 17 bytes per reading down) and
// MQTT 3.1.1 over TLS through the modem (each PUBACK its own TLS record of
// 26 bytes, records split across AT+CIPRXGET reads). sizes are the window
// sizes measured for each: 10,000 readings only for 3.1.1, so that the
// whole benchmark stays a few minutes.
var rxProtocols = []rxProtocol{
	{"3.1.1", codec.V311, false, []int{100, 1000, 10000}},
	{"5", codec.V5, false, []int{100, 1000}},
	{"tls", codec.V311, true, []int{100, 1000}},
}

// rxProtocol is one protocol of the receive-policy benchmarks.
type rxProtocol struct {
	name    string
	version codec.Version
	tls     bool
	sizes   []int
}

// rxBroker is where one protocol's windows go.
type rxBroker struct {
	addr string
	tls  uplink.TLSConfig
}

// BenchmarkRxURCPolicies runs one window of issue 13's readings (30-byte
// topic, 41-byte payloads, QoS 1) per protocol (rxProtocols), link and
// "+CIPRXGET: 1" policy of the simulator, on the virtual clock with
// Config.HostTime (so the driver's own waits count as radio-on time), and
// reports the window against the lower bound. The window measured is a
// site's usual one with uploader's defaults (rxUsual: it starts knowing the
// broker's limits, publishes the status record and carries the will); up
// to 1,000 readings it is measured rxRepeats times and the median run
// reported (window/bound-min and -max give the spread), and a site's first
// window (rxFirst) and the usual window
// without status record and will (rxNoWill) are measured too and reported
// as first-window/bound and no-will/bound. It also reports the
// receive side's cost (AT commands, UART bytes and UART time of
// AT+CIPRXGET exchanges) and the original method's radio time per reading
// against the window's under the same policy. The lower bound of a TLS
// window has one more round trip, the handshake's.
//
// poll-uart-% is the UART time of the AT+CIPRXGET exchanges (their bytes at
// the line rate plus the module's turnaround per command; payload excluded)
// as a share of the window's radio-on time.
func BenchmarkRxURCPolicies(b *testing.B) {
	brokerFor := startRxBrokers(b)
	for _, proto := range rxProtocols {
		broker := brokerFor(proto.tls)
		for _, link := range rxLinks() {
			for _, policy := range modemsim.RxURCPolicies() {
				for _, n := range proto.sizes {
					name := fmt.Sprintf("proto=%s/link=%s/urc=%s/readings=%d", proto.name, link.name, policy, n)
					b.Run(name, func(b *testing.B) {
						simCfg := link.cfg
						simCfg.VirtualClock = true
						simCfg.HostTime = true
						simCfg.Variants.RxURC = policy
						for i := 0; i < b.N; i++ {
							runs := 1
							if n <= 1000 {
								runs = rxRepeats
							}
							acc, bound := rxMedianWindow(b, simCfg, broker, proto, n, runs)
							if n <= 1000 {
								first := rxWindow(b, simCfg, broker, proto.version, n, rxFirst)
								b.ReportMetric(first.RadioOnSeconds/rxBound(simCfg, first, proto.tls), "first-window/bound")
								bare := rxWindow(b, simCfg, broker, proto.version, n, rxNoWill)
								b.ReportMetric(bare.RadioOnSeconds/rxBound(simCfg, bare, proto.tls), "no-will/bound")
							}
							b.ReportMetric(acc.RadioOnSeconds, "radio-s")
							b.ReportMetric(bound, "lower-bound-s")
							b.ReportMetric(acc.RadioOnSeconds/bound, "window/bound")
							b.ReportMetric(float64(acc.MQTTBytesUp), "mqtt-B-up")
							b.ReportMetric(float64(acc.MQTTBytesDown)/float64(n), "down-B/reading")
							b.ReportMetric(float64(acc.ATCommands), "at-commands")
							b.ReportMetric(float64(acc.RxPolls), "rx-polls")
							b.ReportMetric(float64(acc.RxReads), "rx-reads")
							b.ReportMetric(float64(acc.RxEmptyReads), "rx-empty-reads")
							b.ReportMetric(float64(acc.RxURCs), "rx-urcs")
							b.ReportMetric(float64(acc.RxUARTBytes), "rx-uart-B")
							b.ReportMetric(100*acc.RxUARTSeconds/acc.RadioOnSeconds, "poll-uart-%")
							orig := rxOriginal(b, simCfg, brokerFor(false).addr, min(n, originalRxSample))
							perReading := acc.RadioOnSeconds / float64(n)
							b.ReportMetric(orig/perReading, "original-radio-ratio")
						}
					})
				}
			}
		}
	}
}

// rxRepeats is how many times BenchmarkRxURCPolicies measures a site's
// usual window of up to 1,000 readings. HostTime charges the host's real
// waits, so a busy moment of the machine running the benchmark (a
// collector, another process) can lengthen one window; the median of
// three is what the window costs, and window/bound-min and -max say how
// far the runs spread.
const rxRepeats = 3

// rxMedianWindow runs the usual window runs times and returns the
// accounting of the median one (by radio time against its lower bound)
// with that bound. With more than one run it reports window/bound-min and
// window/bound-max.
func rxMedianWindow(b *testing.B, simCfg modemsim.Config, broker rxBroker, proto rxProtocol, n, runs int) (modemsim.Accounting, float64) {
	b.Helper()
	type run struct {
		acc          modemsim.Accounting
		bound, ratio float64
	}
	all := make([]run, runs)
	for i := range all {
		acc := rxWindow(b, simCfg, broker, proto.version, n, rxUsual)
		bound := rxBound(simCfg, acc, proto.tls)
		all[i] = run{acc, bound, acc.RadioOnSeconds / bound}
	}
	slices.SortFunc(all, func(x, y run) int { return cmp.Compare(x.ratio, y.ratio) })
	if runs > 1 {
		b.ReportMetric(all[0].ratio, "window/bound-min")
		b.ReportMetric(all[runs-1].ratio, "window/bound-max")
	}
	median := all[runs/2]
	return median.acc, median.bound
}

// rxBound is the lower bound of a window with acc's bytes; a TLS window
// has one more round trip, the handshake's.
func rxBound(cfg modemsim.Config, acc modemsim.Accounting, tls bool) float64 {
	bound := nbiotLowerBound(cfg, acc)
	if tls {
		bound += cfg.RoundTrip.Seconds()
	}
	return bound
}

// rxKind is which of a site's windows rxWindow measures.
type rxKind int

const (
	// rxUsual is every window but a site's first, as `uploader run` and
	// `flush` make it by default: a window of one reading runs first on the
	// same queue (and a module of its own), as the site's previous window,
	// so the measured one starts with what the broker announced last time
	// (the broker note); it publishes the status record and carries the
	// will, so its teardown waits for the DISCONNECT's acknowledgement.
	rxUsual rxKind = iota
	// rxFirst is a site's first window with the same defaults: a fresh
	// queue, nothing known of the broker.
	rxFirst
	// rxNoWill is the usual window with --status-topic "" and
	// --will-topic "": no status record, and nothing waits for the
	// DISCONNECT.
	rxNoWill
)

// startRxBrokers starts the benchmark's brokers, a plain one and one that
// asks for a client certificate, and returns where a protocol's windows go.
func startRxBrokers(b *testing.B) func(tls bool) rxBroker {
	b.Helper()
	plain, err := brokertest.Start(brokertest.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = plain.Close() })
	ca := newTestCA(b)
	secure, err := brokertest.Start(brokertest.Options{TLS: ca.serverConfig(b, "broker.test")})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = secure.Close() })
	return func(tls bool) rxBroker {
		if !tls {
			return rxBroker{addr: plain.Addr()}
		}
		return rxBroker{addr: secure.Addr(), tls: uplink.TLSConfig{
			Enabled: true, CAFile: ca.caFile, CertFile: ca.clientCert, KeyFile: ca.clientKey, ServerName: "broker.test"}}
	}
}

// rxWindow runs one window of n rxReadings with MQTT version v, of the
// kind asked, on a queue of its own, and returns the module's accounting.
func rxWindow(b *testing.B, simCfg modemsim.Config, broker rxBroker, v codec.Version, n int, kind rxKind) modemsim.Accounting {
	b.Helper()
	q, dir := benchQueue(b, n, rxReading)
	defer q.Close()
	acc, err := rxWindowOn(simCfg, broker, v, q, dir, "site-bench", n, kind)
	if err != nil {
		b.Fatal(err)
	}
	return acc
}

// rxWindowOn is rxWindow on a queue q (in dir) holding n rxReadings, as
// clientID. Safe to call from any goroutine: each call has a module of its
// own (concurrent windows need distinct client ids).
func rxWindowOn(simCfg modemsim.Config, broker rxBroker, v codec.Version, q *queue.Queue, dir, clientID string, n int, kind rxKind) (modemsim.Accounting, error) {
	cfg := uplink.Defaults()
	cfg.APN = "nbiot"
	cfg.Broker = broker.addr
	cfg.TLS = broker.tls
	cfg.MQTTVersion = v
	cfg.ClientID = clientID
	cfg.LockPath = filepath.Join(dir, "modem.lock")
	if kind != rxNoWill {
		// cmd/uploader's defaults (uploader/{client-id}/status).
		cfg.StatusTopic = "uploader/" + cfg.ClientID + "/status"
		cfg.WillTopic = cfg.StatusTopic
	}
	if v := os.Getenv("BENCH_INFLIGHT"); v != "" {
		cfg.InFlight, _ = strconv.Atoi(v)
	}
	warm := kind != rxFirst
	if warm {
		cfg.MaxRecords = 1
		if _, err := rxRun(simCfg, cfg, q, 1); err != nil {
			return modemsim.Accounting{}, fmt.Errorf("previous window: %w", err)
		}
		cfg.MaxRecords = 0
	}
	return rxRun(simCfg, cfg, q, n-btoi(warm))
}

// rxRun runs one window of cfg on a module of its own and checks that it
// delivered want readings.
func rxRun(simCfg modemsim.Config, cfg uplink.Config, q *queue.Queue, want int) (modemsim.Accounting, error) {
	sim, err := modemsim.Start(simCfg)
	if err != nil {
		return modemsim.Accounting{}, err
	}
	defer sim.Close()
	cfg.Device = sim.Path()
	sum, err := uplink.RunWindow(context.Background(), cfg, q)
	if err != nil {
		return modemsim.Accounting{}, fmt.Errorf("window (%d of %d readings acknowledged): %w", sum.Acked, want, err)
	}
	if sum.Acked != want {
		return modemsim.Accounting{}, fmt.Errorf("window acknowledged %d of %d readings", sum.Acked, want)
	}
	return sim.Accounting(), nil
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
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

// BenchmarkRxRealTime checks the virtual clock's figures in real time: the
// 1,000-reading windows of BenchmarkRxURCPolicies on both links, a site's
// usual window and its first, under every URC policy, with the simulator
// sleeping its delays and the host's own timing real, as on a site. The
// windows of one protocol and link run side by side (each with a module,
// queue and client id of its own), so the check takes about a minute per
// protocol and link. Metrics: <policy>-window/bound and
// <policy>-first/bound, the window against the same lower bound as
// BenchmarkRxURCPolicies.
func BenchmarkRxRealTime(b *testing.B) {
	brokerFor := startRxBrokers(b)
	const n = 1000
	type cell struct {
		metric string
		kind   rxKind
		policy modemsim.RxURCPolicy
		q      *queue.Queue
		dir    string
		acc    modemsim.Accounting
		err    error
	}
	for _, proto := range rxProtocols {
		for _, link := range rxLinks() {
			b.Run("proto="+proto.name+"/link="+link.name, func(b *testing.B) {
				broker := brokerFor(proto.tls)
				for i := 0; i < b.N; i++ {
					var cells []*cell
					for _, policy := range modemsim.RxURCPolicies() {
						for _, k := range []struct {
							kind rxKind
							name string
						}{{rxUsual, "window"}, {rxFirst, "first"}} {
							q, dir := benchQueue(b, n, rxReading)
							cells = append(cells, &cell{metric: policy.String() + "-" + k.name + "/bound", kind: k.kind, policy: policy, q: q, dir: dir})
						}
					}
					var wg sync.WaitGroup
					for j, c := range cells {
						wg.Go(func() {
							simCfg := link.cfg
							simCfg.Variants.RxURC = c.policy
							id := fmt.Sprintf("site-rt-%s-%s-%d", proto.name, link.name, j)
							c.acc, c.err = rxWindowOn(simCfg, broker, proto.version, c.q, c.dir, id, n, c.kind)
						})
					}
					wg.Wait()
					for _, c := range cells {
						_ = c.q.Close()
					}
					for _, c := range cells {
						if c.err != nil {
							b.Fatalf("%s: %v", c.metric, c.err)
						}
						b.ReportMetric(c.acc.RadioOnSeconds/rxBound(link.cfg, c.acc, proto.tls), c.metric)
					}
				}
			})
		}
	}
}
