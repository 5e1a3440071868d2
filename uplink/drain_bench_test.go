package uplink_test

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nbiot-uploader/uploader/queue"
	"github.com/nbiot-uploader/uploader/uplink"
	"github.com/nbiot-uploader/uploader/uplink/brokertest"
	"github.com/nbiot-uploader/uploader/uplink/modemsim"
)

// The drain benchmark measures the uploader's own memory, so the simulated
// module and the broker — which keep every byte and message they see — run
// in a child process: the test binary itself, started with drainPeerEnv set,
// runs only TestDrainPeerProcess. It prints one line
// "drainpeer <device> <broker>", answers "count <n>" on its stdin with
// "drainpeer-count <routed>" once n messages were routed (or after a
// minute), and exits when its stdin closes.
const (
	drainPeerEnv    = "UPLOADER_DRAIN_PEER"
	drainPeerPrefix = "drainpeer "
	drainCountReply = "drainpeer-count "
)

// TestDrainPeerProcess is the child process of BenchmarkDrainMillion, not a
// test of its own.
func TestDrainPeerProcess(t *testing.T) {
	if os.Getenv(drainPeerEnv) != "1" {
		t.Skip("runs only as the child process of BenchmarkDrainMillion")
	}
	broker, err := brokertest.Start(brokertest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer broker.Close()
	sim, err := modemsim.Start(modemsim.Fast())
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	// The module keeps every forwarded byte for its accounting; nothing here
	// reads it, so drop it regularly to keep this process small.
	stopReset := make(chan struct{})
	defer close(stopReset)
	go func() {
		tick := time.NewTicker(2 * time.Second)
		defer tick.Stop()
		for {
			select {
			case <-stopReset:
				return
			case <-tick.C:
				sim.ResetAccounting()
			}
		}
	}()
	fmt.Printf("%s%s %s\n", drainPeerPrefix, sim.Path(), broker.Addr())
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		arg, ok := strings.CutPrefix(in.Text(), "count ")
		if !ok {
			t.Fatalf("unknown request %q", in.Text())
		}
		want, err := strconv.Atoi(arg)
		if err != nil {
			t.Fatalf("count %q: %v", arg, err)
		}
		broker.WaitCount(want, time.Minute)
		fmt.Printf("%s%d\n", drainCountReply, broker.Count())
	}
}

// drainPeer is the running child process.
type drainPeer struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	lines  *bufio.Scanner
	device string
	broker string
}

func startDrainPeer(b *testing.B) *drainPeer {
	b.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestDrainPeerProcess$", "-test.timeout=0")
	cmd.Env = append(os.Environ(), drainPeerEnv+"=1")
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatalf("start the simulator and broker process: %v", err)
	}
	p := &drainPeer{cmd: cmd, stdin: stdin, lines: bufio.NewScanner(stdout)}
	b.Cleanup(p.close)
	line, err := p.reply(drainPeerPrefix)
	if err != nil {
		b.Fatal(err)
	}
	fields := strings.Fields(line)
	if len(fields) != 2 {
		b.Fatalf("peer announced %q, want a device and a broker address", line)
	}
	p.device, p.broker = fields[0], fields[1]
	return p
}

// reply returns the rest of the next stdout line starting with prefix,
// skipping the test binary's own output. A peer that dies ends the wait.
func (p *drainPeer) reply(prefix string) (string, error) {
	for p.lines.Scan() {
		if rest, ok := strings.CutPrefix(p.lines.Text(), prefix); ok {
			return rest, nil
		}
	}
	return "", fmt.Errorf("drain peer ended before a %q line: %w", prefix, p.lines.Err())
}

// routed waits until the broker routed want messages (a minute at most) and
// returns how many it routed.
func (p *drainPeer) routed(want int) (int, error) {
	if _, err := fmt.Fprintf(p.stdin, "count %d\n", want); err != nil {
		return 0, fmt.Errorf("ask the drain peer: %w", err)
	}
	line, err := p.reply(drainCountReply)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(line)
}

func (p *drainPeer) close() {
	_ = p.stdin.Close()
	done := make(chan struct{})
	go func() { _ = p.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-done
	}
}

// procStatusKiB reads the named kB fields of /proc/self/status.
func procStatusKiB(names ...string) (map[string]int64, error) {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return nil, fmt.Errorf("read /proc/self/status: %w", err)
	}
	out := make(map[string]int64, len(names))
	for _, line := range strings.Split(string(data), "\n") {
		name, rest, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		for _, want := range names {
			if name == want {
				v, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
				if err != nil {
					return nil, fmt.Errorf("/proc/self/status %s %q: %w", name, rest, err)
				}
				out[name] = v
			}
		}
	}
	for _, want := range names {
		if _, ok := out[want]; !ok {
			return nil, fmt.Errorf("/proc/self/status has no %s", want)
		}
	}
	return out, nil
}

// resetPeakRSS sets VmHWM back to the current RSS (Linux ≥ 4.0) and reports
// whether the kernel did it.
func resetPeakRSS() bool {
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		return false
	}
	st, err := procStatusKiB("VmHWM", "VmRSS")
	// The RSS may grow between the reset and the read, never shrink by a MiB.
	return err == nil && st["VmHWM"] <= st["VmRSS"]+1024
}

// memoryPeaks samples the Go heap and the process RSS every 50ms.
type memoryPeaks struct {
	mu                 sync.Mutex
	heap               uint64
	rssKiB, rssAnonKiB int64
	err                error
	done, finished     chan struct{}
	heapSample         []metrics.Sample
	samples            int
}

func sampleMemory() *memoryPeaks {
	m := &memoryPeaks{
		done: make(chan struct{}), finished: make(chan struct{}),
		heapSample: []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}},
	}
	go func() {
		defer close(m.finished)
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			m.sample()
			select {
			case <-m.done:
				m.sample()
				return
			case <-tick.C:
			}
		}
	}()
	return m
}

func (m *memoryPeaks) sample() {
	metrics.Read(m.heapSample)
	st, err := procStatusKiB("VmRSS", "RssAnon")
	m.mu.Lock()
	defer m.mu.Unlock()
	m.samples++
	m.heap = max(m.heap, m.heapSample[0].Value.Uint64())
	if err != nil {
		m.err = err
		return
	}
	m.rssKiB = max(m.rssKiB, st["VmRSS"])
	m.rssAnonKiB = max(m.rssAnonKiB, st["RssAnon"])
}

func (m *memoryPeaks) stop() {
	close(m.done)
	<-m.finished
}

// drainSelected reports whether the -test.bench pattern names the drain
// benchmark itself, so `-bench .` does not start a million-record run.
func drainSelected() bool {
	f := flag.Lookup("test.bench")
	return f != nil && strings.Contains(f.Value.String(), "DrainMillion")
}

// envInt reads a positive count from the environment, or def.
func envInt(b *testing.B, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		b.Fatalf("%s=%q: want a positive count", name, v)
	}
	return n
}

const mib = 1 << 20

// BenchmarkDrainMillion enqueues 1,000,000 site readings (in transactions
// of 10,000) into a fresh queue, then drains them with uplink.RunWindow
// through the simulator (fast profile: unpaced UART, no latency) to a real
// broker, both in a child process, and reports this process's peak Go heap
// (/memory/classes/heap/objects:bytes) and peak RSS while draining, records
// per second and wall seconds.
//
// It runs only when the -bench pattern names it and not with -short.
// UPLOADER_BENCH_DRAIN_READINGS changes the count (for a quick estimate);
// UPLOADER_BENCH_DRAIN_WINDOW caps the records of one window (Config.
// MaxRecords), so the drain takes several windows.
func BenchmarkDrainMillion(b *testing.B) {
	if testing.Short() || !drainSelected() {
		b.Skip("slow: runs only when -bench names DrainMillion, and not with -short")
	}
	n := envInt(b, "UPLOADER_BENCH_DRAIN_READINGS", 1_000_000)
	perWindow := 0
	if os.Getenv("UPLOADER_BENCH_DRAIN_WINDOW") != "" {
		perWindow = envInt(b, "UPLOADER_BENCH_DRAIN_WINDOW", 0)
	}
	peer := startDrainPeer(b)
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		dir := b.TempDir()
		q, err := queue.Open(filepath.Join(dir, "queue.db"), nil)
		if err != nil {
			b.Fatal(err)
		}
		const batch = 10_000
		recs := make([]queue.Record, 0, batch)
		for start := 0; start < n; start += batch {
			recs = recs[:0]
			for j := start; j < min(n, start+batch); j++ {
				topic, payload := siteReading(j)
				recs = append(recs, queue.Record{Topic: topic, Payload: payload, QoS: 1})
			}
			if _, err := q.Enqueue(recs...); err != nil {
				b.Fatalf("enqueue readings %d..: %v", start, err)
			}
		}
		recs = nil
		st, err := q.Stats()
		if err != nil || st.Depth != int64(n) {
			b.Fatalf("queue depth %d after enqueueing %d: %v", st.Depth, n, err)
		}

		cfg := uplink.Defaults()
		cfg.Device = peer.device
		cfg.APN = "iot"
		cfg.Broker = peer.broker
		cfg.ClientID = fmt.Sprintf("site-drain-%d", i)
		cfg.LockPath = filepath.Join(dir, "modem.lock")
		cfg.MaxRecords = perWindow
		cfg.WindowTimeout = 2 * time.Hour

		runtime.GC()
		debug.FreeOSMemory()
		before, err := procStatusKiB("VmHWM")
		if err != nil {
			b.Fatal(err)
		}
		reset := resetPeakRSS()
		peaks := sampleMemory()
		b.StartTimer()
		start := time.Now()
		acked, windows := 0, 0
		for acked < n {
			if windows > n/max(perWindow, 1)+10 {
				b.Fatalf("%d windows acknowledged only %d of %d readings", windows, acked, n)
			}
			sum, err := uplink.RunWindow(context.Background(), cfg, q)
			windows++
			if err != nil || sum.Acked == 0 {
				b.Fatalf("window %d: %+v: %v", windows, sum, err)
			}
			acked += sum.Acked
		}
		wall := time.Since(start)
		b.StopTimer()
		peaks.stop()
		after, err := procStatusKiB("VmHWM")
		if err != nil {
			b.Fatal(err)
		}
		if peaks.err != nil {
			b.Fatal(peaks.err)
		}
		if st, err := q.Stats(); err != nil || st.Depth != 0 || acked != n {
			b.Fatalf("after %d windows: %d acknowledged, queue depth %d: %v", windows, acked, st.Depth, err)
		}
		if got, err := peer.routed(n); err != nil || got < n {
			b.Fatalf("the broker routed %d of %d readings: %v", got, n, err)
		}
		if err := q.Close(); err != nil {
			b.Fatal(err)
		}

		peakRSS := float64(peaks.rssKiB) / 1024
		if reset {
			peakRSS = max(peakRSS, float64(after["VmHWM"])/1024)
		}
		b.ReportMetric(float64(n), "readings")
		b.ReportMetric(float64(windows), "windows")
		b.ReportMetric(float64(peaks.heap)/mib, "peak-heap-MiB")
		b.ReportMetric(peakRSS, "peak-rss-MiB")
		b.ReportMetric(float64(peaks.rssAnonKiB)/1024, "peak-rss-anon-MiB")
		b.ReportMetric(float64(before["VmHWM"])/1024, "hwm-before-drain-MiB")
		b.ReportMetric(float64(after["VmHWM"])/1024, "hwm-after-drain-MiB")
		b.ReportMetric(boolMetric(reset), "hwm-reset")
		b.ReportMetric(float64(n)/wall.Seconds(), "records/s")
		b.ReportMetric(wall.Seconds(), "wall-s")
		b.ReportMetric(float64(peaks.samples), "memory-samples")
	}
}

func boolMetric(v bool) float64 {
	if v {
		return 1
	}
	return 0
}
