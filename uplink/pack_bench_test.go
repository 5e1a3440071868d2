package uplink_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/nbiot-uploader/uploader/uplink"
	"github.com/nbiot-uploader/uploader/uplink/brokertest"
	"github.com/nbiot-uploader/uploader/uplink/modemsim"
	"github.com/nbiot-uploader/uploader/uplink/pack"
)

// noisyJSONReadings returns realistic readings of one air-quality site:
// a minute apart with jitter, values drifting with sensor noise.
func noisyJSONReadings(seed uint64) func(i int) (string, []byte) {
	r := rand.New(rand.NewPCG(seed, 42))
	t, pm25, pm10, temp, rh := int64(1780000000), 12.0, 20.0, 21.0, 55.0
	walk := func(v *float64, step, lo, hi float64) float64 {
		*v = min(hi, max(lo, *v+(r.Float64()-0.5)*step))
		return *v + (r.Float64()-0.5)*step/2 // noise on top of the drift
	}
	return func(i int) (string, []byte) {
		t += 60 + int64(r.IntN(3)) - 1
		return "sites/042/air", fmt.Appendf(nil, `{"t":%d,"pm25":%.1f,"pm10":%.1f,"temp":%.2f,"rh":%.1f}`,
			t, walk(&pm25, 1.5, 0, 300), walk(&pm10, 2, 0, 500), walk(&temp, 0.2, -20, 50), walk(&rh, 1, 0, 100))
	}
}

// randomReadings are incompressible 340-byte payloads.
func randomReadings(seed uint64) func(i int) (string, []byte) {
	r := rand.New(rand.NewPCG(seed, 7))
	return func(int) (string, []byte) {
		p := make([]byte, 340)
		for i := range p {
			p[i] = byte(r.Uint32())
		}
		return originalTopic, p
	}
}

var packPayloads = []struct {
	name    string
	reading func(i int) (string, []byte)
}{
	{"original-lines", originalReading},
	{"noisy-json", noisyJSONReadings(1)},
	{"random", randomReadings(1)},
}

// BenchmarkPackedWindowNBIoT sends 1,000 readings of each kind through the
// simulator's NB-IoT profile on its virtual clock, once unpacked and once
// with --pack deflate, and reports air bytes and radio-on seconds per
// reading for both and their ratios.
func BenchmarkPackedWindowNBIoT(b *testing.B) {
	const n = 1000
	broker, err := brokertest.Start(brokertest.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer broker.Close()
	simCfg := modemsim.NBIoT()
	simCfg.VirtualClock = true
	for _, kind := range packPayloads {
		b.Run("payload="+kind.name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				var air, radio [2]float64
				for m, mode := range []uplink.PackMode{uplink.PackNone, uplink.PackDeflate} {
					q, dir := benchQueue(b, n, kind.reading)
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
					cfg.Pack, cfg.PackTopic = mode, "uploader/site-bench/pack"
					sum, err := uplink.RunWindow(context.Background(), cfg, q)
					if err != nil || sum.Outcome != "ok" {
						b.Fatalf("%s window: %+v %v", mode, sum, err)
					}
					if st, _ := q.Stats(); st.Depth != 0 {
						b.Fatalf("%s window left %d readings queued", mode, st.Depth)
					}
					acc := sim.Accounting()
					sim.Close()
					q.Close()
					air[m] = float64(acc.AirBytesUp+acc.AirBytesDown) / n
					radio[m] = acc.RadioOnSeconds / n
				}
				b.ReportMetric(air[0], "unpacked-air-B/reading")
				b.ReportMetric(air[1], "packed-air-B/reading")
				b.ReportMetric(radio[0], "unpacked-radio-s/reading")
				b.ReportMetric(radio[1], "packed-radio-s/reading")
				b.ReportMetric(air[0]/air[1], "air-unpacked/packed")
				b.ReportMetric(radio[0]/radio[1], "radio-unpacked/packed")
			}
		})
	}
}

// BenchmarkPackSize measures what deflate gains per pack size bound: the
// compressed bytes per reading of 20,000 readings packed at each bound.
// The default, uplink.DefaultPackMaxBytes, is where the curve flattens.
func BenchmarkPackSize(b *testing.B) {
	for _, kind := range packPayloads[:2] {
		rs := make([]pack.Reading, 20000)
		for i := range rs {
			topic, payload := kind.reading(i)
			rs[i] = pack.Reading{Seq: uint64(i + 1), Topic: topic, Payload: payload}
		}
		for _, size := range []int{1 << 10, 2 << 10, 4 << 10, 8 << 10, 16 << 10, 32 << 10, 64 << 10} {
			b.Run(fmt.Sprintf("payload=%s/max=%d", kind.name, size), func(b *testing.B) {
				var e pack.Encoder
				for i := 0; i < b.N; i++ {
					total, packs, hint := 0, 0, 0
					for rest := rs; len(rest) > 0; {
						p, k, err := e.Fit(nil, "site-bench", rest, pack.Deflate, size, hint+hint/8)
						if err != nil || k == 0 {
							b.Fatalf("fit: %d, %v", k, err)
						}
						total += len(p)
						packs++
						rest, hint = rest[k:], k
					}
					b.ReportMetric(float64(total)/float64(len(rs)), "B/reading")
					b.ReportMetric(float64(len(rs))/float64(packs), "readings/pack")
				}
			})
		}
	}
}
