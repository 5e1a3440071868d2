package queue

import (
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Benchmarks. Figures and commands are in BENCHMARKS.md. Latency percentiles are computed from
// per-call samples and reported with b.ReportMetric; nothing here asserts a time.

// BenchmarkEnqueueOne is one enqueue as a sensor script pays it: Open (which validates the
// file), one Enqueue (lock, open, one transaction, fsync, close), Close.
func BenchmarkEnqueueOne(b *testing.B) {
	path := filepath.Join(b.TempDir(), "q.db")
	mustOpenPath(b, path, nil) // create the file outside the timed loop
	r := Record{Topic: "site/42/temp", Payload: []byte(`{"t":21.5,"ts":1764072000}`), QoS: 1}
	var samples []time.Duration
	for b.Loop() {
		start := time.Now()
		q, err := Open(path, nil)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := q.Enqueue(r); err != nil {
			b.Fatal(err)
		}
		if err := q.Close(); err != nil {
			b.Fatal(err)
		}
		samples = append(samples, time.Since(start))
	}
	reportPercentiles(b, "", samples)
}

// BenchmarkEnqueueBatch10k stores 10,000 records per transaction.
func BenchmarkEnqueueBatch10k(b *testing.B) {
	q := mustOpen(b, nil)
	batch := makeRecords(10_000, 30)
	n := 0
	for b.Loop() {
		mustEnqueue(b, q, batch...)
		n += len(batch)
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkEnqueueDepthRatio compares one enqueue into an empty queue with one into a queue
// holding 1,000,000 records, interleaved so that disk noise hits both alike.
func BenchmarkEnqueueDepthRatio(b *testing.B) {
	empty := mustOpen(b, nil)
	deep := mustOpen(b, nil)
	batch := makeRecords(10_000, 30)
	for range 100 {
		mustEnqueue(b, deep, batch...)
	}
	if d := mustStats(b, deep).Depth; d != 1_000_000 {
		b.Fatalf("deep queue depth %d", d)
	}
	r := Record{Topic: "site/42/temp", Payload: []byte(`{"t":21.5,"ts":1764072000}`), QoS: 1}
	var atEmpty, atDeep []time.Duration
	for b.Loop() {
		start := time.Now()
		seqs := mustEnqueue(b, empty, r)
		atEmpty = append(atEmpty, time.Since(start))
		if err := empty.Ack(seqs); err != nil { // keep it at depth 0
			b.Fatal(err)
		}
		start = time.Now()
		mustEnqueue(b, deep, r)
		atDeep = append(atDeep, time.Since(start))
	}
	reportPercentiles(b, "depth0-", atEmpty)
	reportPercentiles(b, "depth1M-", atDeep)
	b.ReportMetric(float64(percentile(atDeep, 50))/float64(percentile(atEmpty, 50)), "p50-ratio")
	b.ReportMetric(mean(atDeep)/mean(atEmpty), "mean-ratio")
}

// BenchmarkDrainMillion reads and acknowledges 1,000,000 records in batches of 1,000 and
// reports the peak of the Go heap (live and not yet collected objects) while doing it.
func BenchmarkDrainMillion(b *testing.B) {
	batch := makeRecords(10_000, 30)
	var peak uint64
	drained := 0
	var drainTime time.Duration
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		q := mustOpen(b, nil)
		for range 100 {
			mustEnqueue(b, q, batch...)
		}
		runtime.GC()
		stop := sampleHeapPeak(&peak)
		b.StartTimer()
		start := time.Now()
		var after uint64
		for {
			recs, err := q.Read(after, 1000, 0)
			if err != nil {
				b.Fatal(err)
			}
			if len(recs) == 0 {
				break
			}
			after = recs[len(recs)-1].Seq
			if err := q.Ack(seqsOf(recs)); err != nil {
				b.Fatal(err)
			}
			drained += len(recs)
		}
		drainTime += time.Since(start)
		b.StopTimer()
		stop()
		if drained != 1_000_000*(i+1) {
			b.Fatalf("drained %d records", drained)
		}
	}
	b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
	b.ReportMetric(float64(drained)/drainTime.Seconds(), "records/s")
}

// BenchmarkLockWaitDuringDrain drains a 10,000-record window in batches of 100 (one Read and
// one Ack per batch, as the uplink does per chunk) while two sensor scripts enqueue single
// records every 2ms through their own handles. It reports how long the enqueues waited for
// the lock and how long they took in all.
func BenchmarkLockWaitDuringDrain(b *testing.B) {
	path := filepath.Join(b.TempDir(), "q.db")
	drainer := mustOpenPath(b, path, nil)
	window := makeRecords(10_000, 30)
	var mu sync.Mutex
	var waits, totals []time.Duration
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		mustEnqueue(b, drainer, window...)
		b.StartTimer()
		var draining atomic.Bool
		draining.Store(true)
		var wg sync.WaitGroup
		for range 2 {
			sensor := mustOpenPath(b, path, nil)
			sensor.onLockWait = func(d time.Duration) {
				mu.Lock()
				waits = append(waits, d)
				mu.Unlock()
			}
			wg.Go(func() {
				r := Record{Topic: "site/42/temp", Payload: []byte("21.5"), QoS: 1}
				for draining.Load() {
					start := time.Now()
					if _, err := sensor.Enqueue(r); err != nil {
						b.Error(err)
						return
					}
					d := time.Since(start)
					mu.Lock()
					totals = append(totals, d)
					mu.Unlock()
					pause(2 * time.Millisecond)
				}
			})
		}
		var after uint64
		for {
			recs, err := drainer.Read(after, 100, 0)
			if err != nil {
				b.Fatal(err)
			}
			if len(recs) == 0 {
				break
			}
			after = recs[len(recs)-1].Seq
			if err := drainer.Ack(seqsOf(recs)); err != nil {
				b.Fatal(err)
			}
		}
		draining.Store(false)
		wg.Wait()
	}
	reportPercentiles(b, "lockwait-", waits)
	reportPercentiles(b, "enqueue-", totals)
	b.ReportMetric(float64(len(waits))/float64(b.N), "enqueues/window")
}

// sampleHeapPeak records the peak of /memory/classes/heap/objects:bytes every 200µs until the
// returned stop function is called.
func sampleHeapPeak(peak *uint64) (stop func()) {
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		tick := time.NewTicker(200 * time.Microsecond)
		defer tick.Stop()
		for {
			metrics.Read(sample)
			if v := sample[0].Value.Uint64(); v > *peak {
				*peak = v
			}
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	}()
	return func() { close(done); <-finished }
}

func reportPercentiles(b *testing.B, prefix string, samples []time.Duration) {
	if len(samples) == 0 {
		return
	}
	for _, p := range []float64{50, 99} {
		b.ReportMetric(float64(percentile(samples, p).Microseconds())/1000, prefix+"p"+strconv.FormatFloat(p, 'f', -1, 64)+"-ms")
	}
	b.ReportMetric(float64(slices.Max(samples).Microseconds())/1000, prefix+"max-ms")
}

func percentile(samples []time.Duration, p float64) time.Duration {
	s := slices.Clone(samples)
	slices.Sort(s)
	i := int(float64(len(s)-1) * p / 100)
	return s[i]
}

func mean(samples []time.Duration) float64 {
	var sum time.Duration
	for _, d := range samples {
		sum += d
	}
	return float64(sum) / float64(len(samples))
}
