package uplink

import (
	"fmt"
	"log/slog"
	"math/rand/v2"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/nbiot-uploader/uploader/queue"
	"github.com/nbiot-uploader/uploader/uplink/session"
)

// BenchmarkPackMillion packs 1,000,000 queued readings (noisy JSON, in a
// real queue file) through packStore as a session drives it — Read,
// then Ack of every pack — and reports the peak heap seen after every
// Read and the encode speed over the readings' bytes.
func BenchmarkPackMillion(b *testing.B) {
	const n, batch = 1_000_000, 20_000
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		q, err := queue.Open(filepath.Join(b.TempDir(), "queue.db"), nil)
		if err != nil {
			b.Fatal(err)
		}
		r := rand.New(rand.NewPCG(1, 2))
		recs := make([]queue.Record, batch)
		var raw int64
		for k := 0; k < n; k += batch {
			for j := range recs {
				recs[j] = queue.Record{Topic: "sites/042/air", QoS: 1,
					Payload: fmt.Appendf(nil, `{"t":%d,"pm25":%.1f,"pm10":%.1f,"temp":%.2f,"rh":%.1f}`, 1780000000+60*(k+j), 12+r.Float64()*3, 20+r.Float64()*4, 21+r.Float64(), 55+r.Float64()*5)}
				raw += int64(len(recs[j].Payload) + len(recs[j].Topic))
			}
			if _, err := q.Enqueue(recs...); err != nil {
				b.Fatal(err)
			}
		}
		recs = nil
		s := newPackStore(q, "site-bench", "uploader/site-bench/pack", DefaultPackMaxBytes, slog.New(slog.DiscardHandler))
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		base, peak := ms.HeapAlloc, ms.HeapAlloc
		b.StartTimer()
		start := time.Now()
		var after uint64
		for {
			got, err := s.Read(after, session.DefaultBatchRecords, session.DefaultBatchBytes)
			if err != nil {
				b.Fatal(err)
			}
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapAlloc)
			if len(got) == 0 {
				break
			}
			seqs := make([]uint64, len(got))
			for j, p := range got {
				seqs[j] = p.Seq
			}
			if err := s.Ack(seqs); err != nil {
				b.Fatal(err)
			}
			after = got[len(got)-1].Seq
		}
		took := time.Since(start)
		b.StopTimer()
		if st, _ := q.Stats(); st.Depth != 0 || s.packed != n {
			b.Fatalf("%d left queued, %d packed", st.Depth, s.packed)
		}
		q.Close()
		b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
		b.ReportMetric(float64(peak-base)/(1<<20), "peak-heap-above-start-MiB")
		b.ReportMetric(float64(raw)/took.Seconds()/1e6, "MB/s")
		b.ReportMetric(float64(n)/took.Seconds(), "readings/s")
		b.ReportMetric(float64(n)/float64(s.packs), "readings/pack")
	}
}
