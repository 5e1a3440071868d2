package main

import (
	"errors"
	"fmt"
	"slices"
)

// ErrMissingMetric is wrapped for every figure the report needs that the
// benchmark output does not hold.
var ErrMissingMetric = errors.New("metric missing from the benchmark output")

// figures looks metrics up in one run's results and collects every missing
// one, so the report fails naming all of them at once.
type figures struct {
	out     *Output
	missing []error
}

func (f *figures) samples(name, metric string) []float64 {
	var vs []float64
	if f.out != nil {
		for _, r := range f.out.Results {
			if r.Name != name {
				continue
			}
			if v, ok := r.Metrics[metric]; ok {
				vs = append(vs, v)
			}
		}
	}
	if len(vs) == 0 {
		f.missing = append(f.missing, fmt.Errorf("%w: %s %q", ErrMissingMetric, name, metric))
	}
	return vs
}

// one is the value of a benchmark run once (the last one if it ran more).
func (f *figures) one(name, metric string) float64 {
	vs := f.samples(name, metric)
	if len(vs) == 0 {
		return 0
	}
	return vs[len(vs)-1]
}

// median of the samples of a benchmark run with -count.
func (f *figures) median(name, metric string) float64 {
	vs := f.samples(name, metric)
	if len(vs) == 0 {
		return 0
	}
	s := slices.Clone(vs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// span is the smallest and largest sample.
func (f *figures) span(name, metric string) Span {
	vs := f.samples(name, metric)
	if len(vs) == 0 {
		return Span{}
	}
	return Span{Lo: slices.Min(vs), Hi: slices.Max(vs), N: len(vs)}
}

func (f *figures) err() error { return errors.Join(f.missing...) }

// Span is the range of a figure over repeated runs.
type Span struct {
	Lo, Hi float64
	N      int
}

// WindowRow is one window size of table (a).
type WindowRow struct {
	Readings                                      int
	OriginalReadings                              int // how many the original method sent (≤ Readings)
	BatchedRadio, OriginalRadio, OriginalSleeps   float64
	RadioRatio                                    float64
	BatchedUART, OriginalUART                     float64
	BatchedAir, OriginalAir, AirRatio             float64
	BatchedRadioTotal, LowerBound, BatchedToBound float64
	OriginalWall                                  float64
}

// Sampled reports whether the original method ran on fewer readings.
func (r WindowRow) Sampled() bool { return r.OriginalReadings < r.Readings }

// VersionRow is one protocol of table (b).
type VersionRow struct {
	Label                               string
	MQTT, MQTTIn, UART, Air, RadioOn    float64
	SeqBytes, NoSeqMQTT, AliasOnlyShare float64
}

// WireRow is one topic/payload size of the session's MQTT byte table.
type WireRow struct {
	TopicLen, PayloadLen, Records                int
	V311, V5, V5Aliases, V5AliasesSeq, V5SeqDown float64
}

// LineRateRow is one baud rate of table (c).
type LineRateRow struct {
	Baud                                     int
	Streaming, StreamingPct, WholePct, Fixed float64
}

// LineRate is the UART line rate in bytes per second (8N1: 10 bits a byte).
func (r LineRateRow) LineRate() float64 { return float64(r.Baud) / 10 }

// QueueFigures is table (d).
type QueueFigures struct {
	EnqueueP50, EnqueueP99, EnqueueMax    float64
	BatchRate                             float64
	Depth0P50, Depth1MP50, DepthP50Ratio  float64
	DepthMeanRatio                        float64
	DrainPeakHeap, DrainRate              float64
	LockWaitP50, LockWaitP99, LockWaitMax float64
	LockEnqueueP99, LockEnqueuesPerWindow float64
}

// DrainFigures is table (e).
type DrainFigures struct {
	Readings, Windows              int
	PeakHeap, PeakRSS, PeakRSSAnon float64
	HWMBefore, HWMAfter            float64
	HWMReset                       bool
	RecordsPerSecond, Wall         float64
}

// CodecRow is one codec benchmark (medians).
type CodecRow struct {
	Name, What              string
	NsPerOp, BPerOp, Allocs float64
	Samples                 int
}

// ThroughputRow is one session throughput case (range over -count).
type ThroughputRow struct {
	Version string
	QoS     [3]Span
}

// ModemRow is one modem write-throughput case (range over -count).
type ModemRow struct {
	Case, What           string
	PayloadRate, LinePct Span
	UARTPerPayload       float64
}

var windowSizes = []int{1, 10, 100, 1000, 10000}

func windowRows(out *Output) ([]WindowRow, error) {
	f := &figures{out: out}
	var rows []WindowRow
	for _, n := range windowSizes {
		name := fmt.Sprintf("NBIoTWindowVsOriginal/readings=%d", n)
		r := WindowRow{
			Readings:          n,
			OriginalReadings:  int(f.one(name, "original-readings")),
			BatchedRadio:      f.one(name, "batched-radio-s/reading"),
			OriginalRadio:     f.one(name, "original-radio-s/reading"),
			OriginalSleeps:    f.one(name, "original+sleeps-radio-s/reading"),
			RadioRatio:        f.one(name, "radio-ratio"),
			BatchedUART:       f.one(name, "batched-uart-B/reading"),
			OriginalUART:      f.one(name, "original-uart-B/reading"),
			BatchedAir:        f.one(name, "batched-air-B/reading"),
			OriginalAir:       f.one(name, "original-air-B/reading"),
			AirRatio:          f.one(name, "air-bytes-ratio"),
			BatchedRadioTotal: f.one(name, "batched-radio-s"),
			LowerBound:        f.one(name, "lower-bound-s"),
			BatchedToBound:    f.one(name, "batched/bound"),
			OriginalWall:      f.one(name, "original-wall-s"),
		}
		rows = append(rows, r)
	}
	return rows, f.err()
}

func versionRows(out *Output) ([]VersionRow, error) {
	f := &figures{out: out}
	const name = "NBIoTMQTTVersions"
	rows := []VersionRow{
		{
			Label: "MQTT 3.1.1", MQTT: f.one(name, "v311-mqtt-B/reading"), MQTTIn: f.one(name, "v311-mqtt-in-B/reading"),
			UART: f.one(name, "v311-uart-B/reading"), Air: f.one(name, "v311-air-B/reading"), RadioOn: f.one(name, "v311-radio-s/reading"),
		},
		{
			Label: "MQTT 5, topic aliases + `seq` property (the window's default)", MQTT: f.one(name, "v5-mqtt-B/reading"), MQTTIn: f.one(name, "v5-mqtt-in-B/reading"),
			UART: f.one(name, "v5-uart-B/reading"), Air: f.one(name, "v5-air-B/reading"), RadioOn: f.one(name, "v5-radio-s/reading"),
			SeqBytes: f.one(name, "v5-seq-B/reading"), NoSeqMQTT: f.one(name, "v5-noseq-mqtt-B/reading"), AliasOnlyShare: f.one(name, "v5-alias-only-%"),
		},
	}
	return rows, f.err()
}

func wireRows(out *Output) ([]WireRow, error) {
	f := &figures{out: out}
	var rows []WireRow
	for _, size := range [][2]int{{20, 20}, {40, 64}} {
		for _, n := range []int{60, 1000} {
			base := fmt.Sprintf("WireBytes/T%dP%d/N%d/", size[0], size[1], n)
			rows = append(rows, WireRow{
				TopicLen: size[0], PayloadLen: size[1], Records: n,
				V311:         f.median(base+"mqtt3.1.1", "B/record"),
				V5:           f.median(base+"mqtt5", "B/record"),
				V5Aliases:    f.median(base+"mqtt5-aliases", "B/record"),
				V5AliasesSeq: f.median(base+"mqtt5-aliases-seq", "B/record"),
				V5SeqDown:    f.median(base+"mqtt5-aliases-seq", "Bin/record"),
			})
		}
	}
	return rows, f.err()
}

func throughputRows(out *Output) ([]ThroughputRow, error) {
	f := &figures{out: out}
	var rows []ThroughputRow
	for _, v := range []string{"3.1.1", "5"} {
		r := ThroughputRow{Version: v}
		for qos := range r.QoS {
			r.QoS[qos] = f.span(fmt.Sprintf("Throughput/mqtt%s/qos%d", v, qos), "records/s")
		}
		rows = append(rows, r)
	}
	return rows, f.err()
}

func lineRateRows(out *Output) ([]LineRateRow, error) {
	f := &figures{out: out}
	var rows []LineRateRow
	for _, baud := range []int{57600, 115200} {
		name := fmt.Sprintf("LineRate/baud=%d", baud)
		rows = append(rows, LineRateRow{
			Baud:         baud,
			Streaming:    f.one(name, "streaming-mqtt-B/s"),
			StreamingPct: f.one(name, "streaming-%-of-line"),
			WholePct:     f.one(name, "window-%-of-line"),
			Fixed:        f.one(name, "fixed-cost-s"),
		})
	}
	return rows, f.err()
}

func queueFigures(out *Output) (QueueFigures, error) {
	f := &figures{out: out}
	q := QueueFigures{
		EnqueueP50:            f.one("EnqueueOne", "p50-ms"),
		EnqueueP99:            f.one("EnqueueOne", "p99-ms"),
		EnqueueMax:            f.one("EnqueueOne", "max-ms"),
		BatchRate:             f.one("EnqueueBatch10k", "records/s"),
		Depth0P50:             f.one("EnqueueDepthRatio", "depth0-p50-ms"),
		Depth1MP50:            f.one("EnqueueDepthRatio", "depth1M-p50-ms"),
		DepthP50Ratio:         f.one("EnqueueDepthRatio", "p50-ratio"),
		DepthMeanRatio:        f.one("EnqueueDepthRatio", "mean-ratio"),
		DrainPeakHeap:         f.one("DrainMillion", "peak-heap-MiB"),
		DrainRate:             f.one("DrainMillion", "records/s"),
		LockWaitP50:           f.one("LockWaitDuringDrain", "lockwait-p50-ms"),
		LockWaitP99:           f.one("LockWaitDuringDrain", "lockwait-p99-ms"),
		LockWaitMax:           f.one("LockWaitDuringDrain", "lockwait-max-ms"),
		LockEnqueueP99:        f.one("LockWaitDuringDrain", "enqueue-p99-ms"),
		LockEnqueuesPerWindow: f.one("LockWaitDuringDrain", "enqueues/window"),
	}
	return q, f.err()
}

func drainFigures(out *Output) (*DrainFigures, error) {
	f := &figures{out: out}
	const name = "DrainMillion"
	d := &DrainFigures{
		Readings:         int(f.one(name, "readings")),
		Windows:          int(f.one(name, "windows")),
		PeakHeap:         f.one(name, "peak-heap-MiB"),
		PeakRSS:          f.one(name, "peak-rss-MiB"),
		PeakRSSAnon:      f.one(name, "peak-rss-anon-MiB"),
		HWMBefore:        f.one(name, "hwm-before-drain-MiB"),
		HWMAfter:         f.one(name, "hwm-after-drain-MiB"),
		HWMReset:         f.one(name, "hwm-reset") == 1,
		RecordsPerSecond: f.one(name, "records/s"),
		Wall:             f.one(name, "wall-s"),
	}
	return d, f.err()
}

var codecCases = []struct{ name, what string }{
	{"AppendPublish/v3.1.1", "our QoS 1 PUBLISH, 40-byte topic, 64-byte payload, reused buffer, MQTT 3.1.1"},
	{"AppendPublish/v5", "the same, MQTT 5"},
	{"PahoPublishEncode", "paho.golang `packets` encoding the same MQTT 5 PUBLISH"},
	{"MochiPublishEncode", "mochi-mqtt `packets`, the same PUBLISH at 3.1.1 (reference)"},
	{"DecodePubacks/v3.1.1", "decoding a stream of 10,000 PUBACKs, MQTT 3.1.1"},
	{"DecodePubacks/v5", "the same, MQTT 5"},
}

func codecRows(out *Output) ([]CodecRow, error) {
	f := &figures{out: out}
	var rows []CodecRow
	for _, c := range codecCases {
		rows = append(rows, CodecRow{
			Name: c.name, What: c.what,
			NsPerOp: f.median(c.name, "ns/op"),
			BPerOp:  f.median(c.name, "B/op"),
			Allocs:  f.median(c.name, "allocs/op"),
			Samples: len(f.samples(c.name, "ns/op")),
		})
	}
	return rows, f.err()
}

var modemCases = []struct{ name, what string }{
	{"quick-1460", "quick send (AT+CIPQSEND=1), 1460-byte chunks"},
	{"quick-1024", "quick send, SendLimit 1024"},
	{"normal-1460", "normal send (SEND OK), 1460-byte chunks, round trip 0"},
	{"quick-1460-turnaround-50ms", "quick send, 1460, 50 ms module turnaround per command (nbiot/ltem profiles)"},
}

func modemRows(out *Output) ([]ModemRow, error) {
	f := &figures{out: out}
	var rows []ModemRow
	for _, c := range modemCases {
		name := "WriteThroughput/" + c.name
		rows = append(rows, ModemRow{
			Case: c.name, What: c.what,
			PayloadRate:    f.span(name, "payload-B/s"),
			LinePct:        f.span(name, "line-%"),
			UARTPerPayload: f.median(name, "uart-B/payload-B"),
		})
	}
	return rows, f.err()
}

// FleetRow is one fleet size and placement of the fleet table.
type FleetRow struct {
	Sites                           int
	How                             string // "hash" or "slot"
	Uniform, MaxPerSecond, MaxPer10 float64
	SecondRatio, TenSecondRatio     float64
}

func fleetRows(out *Output) ([]FleetRow, error) {
	f := &figures{out: out}
	var rows []FleetRow
	for _, sites := range []int{1000, 100000} {
		for _, how := range []string{"hash", "slot"} {
			name := fmt.Sprintf("FleetSpread/sites=%d/%s", sites, how)
			rows = append(rows, FleetRow{
				Sites: sites, How: how,
				Uniform:        f.one(name, "uniform/s"),
				MaxPerSecond:   f.one(name, "max/s"),
				MaxPer10:       f.one(name, "max/10s"),
				SecondRatio:    f.one(name, "x-uniform/s"),
				TenSecondRatio: f.one(name, "x-uniform/10s"),
			})
		}
	}
	return rows, f.err()
}

// RxRow is one protocol, link, URC policy and window size of the
// receive-polling table.
type RxRow struct {
	Protocol, Link, Policy        string
	Readings                      int
	Radio, Bound, ToBound         float64 // the median run when several were measured
	ToBoundMin, ToBoundMax        float64 // the spread of the runs; 0 when one run (10,000 readings)
	FirstToBound                  float64 // a site's first window; 0 when not measured (10,000 readings)
	NoWillToBound                 float64 // the usual window without status record and will; 0 when not measured
	Original, PollPct, ATCommands float64
	RxReads, RxUARTBytes          float64
	DownPerReading                float64
}

// rxProtocols are the protocols of the receive-polling table, each with the
// window sizes it is measured at (uplink/rxpolicy_bench_test.go).
var rxProtocols = []struct {
	name  string
	sizes []int
}{
	{"3.1.1", []int{100, 1000, 10000}},
	{"5", []int{100, 1000}},
	{"tls", []int{100, 1000}},
}

var (
	rxLinks    = []string{"nbiot", "20kbit-1s"}
	rxPolicies = []string{"once", "every", "repeat", "never"}
)

func rxRows(out *Output) ([]RxRow, error) {
	f := &figures{out: out}
	var rows []RxRow
	for _, proto := range rxProtocols {
		for _, link := range rxLinks {
			for _, n := range proto.sizes {
				for _, policy := range rxPolicies {
					name := fmt.Sprintf("RxURCPolicies/proto=%s/link=%s/urc=%s/readings=%d", proto.name, link, policy, n)
					rows = append(rows, RxRow{
						Protocol: proto.name, Link: link, Policy: policy, Readings: n,
						Radio:          f.one(name, "radio-s"),
						Bound:          f.one(name, "lower-bound-s"),
						ToBound:        f.one(name, "window/bound"),
						ToBoundMin:     upTo1000(f, name, n, "window/bound-min"),
						ToBoundMax:     upTo1000(f, name, n, "window/bound-max"),
						FirstToBound:   upTo1000(f, name, n, "first-window/bound"),
						NoWillToBound:  upTo1000(f, name, n, "no-will/bound"),
						Original:       f.one(name, "original-radio-ratio"),
						PollPct:        f.one(name, "poll-uart-%"),
						ATCommands:     f.one(name, "at-commands"),
						RxReads:        f.one(name, "rx-reads"),
						RxUARTBytes:    f.one(name, "rx-uart-B"),
						DownPerReading: f.one(name, "down-B/reading"),
					})
				}
			}
		}
	}
	return rows, f.err()
}

// RxRealRow is one protocol, link and URC policy of the real-time check:
// the 1,000-reading windows with the simulator and the host on the real
// clock.
type RxRealRow struct {
	Protocol, Link, Policy string
	ToBound                float64 // a site's usual window
	FirstToBound           float64 // a site's first window
}

func rxRealRows(out *Output) ([]RxRealRow, error) {
	f := &figures{out: out}
	var rows []RxRealRow
	for _, proto := range rxProtocols {
		for _, link := range rxLinks {
			name := "RxRealTime/proto=" + proto.name + "/link=" + link
			for _, policy := range rxPolicies {
				rows = append(rows, RxRealRow{
					Protocol: proto.name, Link: link, Policy: policy,
					ToBound:      f.one(name, policy+"-window/bound"),
					FirstToBound: f.one(name, policy+"-first/bound"),
				})
			}
		}
	}
	return rows, f.err()
}

// upTo1000 is a metric measured only for windows of up to 1,000 readings
// (a site's first window, the window without a will).
func upTo1000(f *figures, name string, n int, metric string) float64 {
	if n > 1000 {
		return 0
	}
	return f.one(name, metric)
}

// PackRow is one payload kind of the packed-window table: 1,000 readings
// through the NB-IoT profile, unpacked and packed, per reading.
type PackRow struct {
	Kind, Label                  string
	UnpackedAir, PackedAir       float64
	UnpackedRadio, PackedRadio   float64
	AirRatio, RadioRatio         float64 // unpacked / packed
	OriginalRadio, OriginalRatio float64 // the original method's radio s/reading (table a) and its ratio to packed
}

// PackSizeRow is one payload kind of the pack-size sweep: compressed bytes
// per reading at each bound of PackSizes.
type PackSizeRow struct {
	Kind, Label string
	BPerReading []float64
}

// PackSizes are the bounds BenchmarkPackSize sweeps; DefaultPackSize is
// uplink.DefaultPackMaxBytes.
var (
	PackSizes       = []int{1 << 10, 2 << 10, 4 << 10, 8 << 10, 16 << 10, 32 << 10, 64 << 10}
	DefaultPackSize = 8 << 10
)

// PackFigures is the packed-window section (issue 16).
type PackFigures struct {
	Rows  []PackRow
	Sizes []PackSizeRow
	// Packing 1,000,000 queued readings.
	PeakHeapMiB, ReadingsPerSecond, MBPerSecond, ReadingsPerPack float64
}

// Row is the row of kind ("original-lines", "noisy-json", "random").
func (p PackFigures) Row(kind string) PackRow {
	for _, r := range p.Rows {
		if r.Kind == kind {
			return r
		}
	}
	return PackRow{}
}

func packFigures(out *Output, original WindowRow) (PackFigures, error) {
	f := &figures{out: out}
	kinds := []struct{ kind, label string }{
		{"original-lines", "(a) the original's 340-byte lines"},
		{"noisy-json", "(b) realistic noisy JSON (t, pm25, pm10, temp, rh)"},
		{"random", "(c) random 340-byte payloads"},
	}
	var p PackFigures
	for _, k := range kinds {
		name := "PackedWindowNBIoT/payload=" + k.kind
		r := PackRow{
			Kind: k.kind, Label: k.label,
			UnpackedAir: f.one(name, "unpacked-air-B/reading"), PackedAir: f.one(name, "packed-air-B/reading"),
			UnpackedRadio: f.one(name, "unpacked-radio-s/reading"), PackedRadio: f.one(name, "packed-radio-s/reading"),
			AirRatio: f.one(name, "air-unpacked/packed"), RadioRatio: f.one(name, "radio-unpacked/packed"),
			OriginalRadio: original.OriginalRadio,
		}
		if r.PackedRadio > 0 {
			r.OriginalRatio = r.OriginalRadio / r.PackedRadio
		}
		p.Rows = append(p.Rows, r)
	}
	for _, k := range kinds[:2] {
		row := PackSizeRow{Kind: k.kind, Label: k.label}
		for _, size := range PackSizes {
			row.BPerReading = append(row.BPerReading, f.one(fmt.Sprintf("PackSize/payload=%s/max=%d", k.kind, size), "B/reading"))
		}
		p.Sizes = append(p.Sizes, row)
	}
	p.PeakHeapMiB = f.one("PackMillion", "peak-heap-MiB")
	p.ReadingsPerSecond = f.one("PackMillion", "readings/s")
	p.MBPerSecond = f.one("PackMillion", "MB/s")
	p.ReadingsPerPack = f.one("PackMillion", "readings/pack")
	return p, f.err()
}
