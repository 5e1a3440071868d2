package e2e

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

var flagLoad = flag.Duration("e2e.load", 60*time.Second, "how long TestLoad's enqueue loops run")

// loadProducers is the number of sensor scripts TestLoad runs at once.
const loadProducers = 8

// lockWaitLine is how the queue logs, at debug level, a wait of over
// 100 ms for its lock (queue/store.go), through the binary's text logger;
// waited is a time.Duration such as "312.5ms" or "1m2.5s".
var lockWaitLine = regexp.MustCompile(`msg="waited for queue lock".* waited=([0-9][0-9a-zµ.]*)`)

// flushRecordsLine is flush's summary line of what the window did.
var flushRecordsLine = regexp.MustCompile(`records:\s+(\d+) acknowledged, (\d+) sent \((\d+) queued when the window started`)

// loadStats collects what the enqueue loops measured.
type loadStats struct {
	mu          sync.Mutex
	latencies   []time.Duration // wall time of each call, process start to exit
	maxLockWait time.Duration   // the longest wait the queue logged
	lockWaits   int             // how many waits the queue logged
	failed      int
}

func (ls *loadStats) record(elapsed time.Duration, stderr string) {
	waits := loggedLockWaits(stderr)
	ls.mu.Lock()
	defer ls.mu.Unlock()
	ls.latencies = append(ls.latencies, elapsed)
	for _, d := range waits {
		ls.lockWaits++
		ls.maxLockWait = max(ls.maxLockWait, d)
	}
}

// loggedLockWaits are the lock waits a process logged on stderr.
func loggedLockWaits(stderr string) []time.Duration {
	var waits []time.Duration
	for _, m := range lockWaitLine.FindAllStringSubmatch(stderr, -1) {
		if d, err := time.ParseDuration(m[1]); err == nil {
			waits = append(waits, d)
		}
	}
	return waits
}

// percentile of sorted latencies, nearest rank.
func percentile(sorted []time.Duration, p int) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := (len(sorted)*p + 99) / 100
	return sorted[max(rank, 1)-1]
}

// windowRun is one `uploader flush` of the back-to-back loop.
type windowRun struct {
	code              int
	acked, queued     int
	sent              int
	elapsed           time.Duration
	firstDelivery     int    // index into the watcher's deliveries when the window started
	failure           string // the process result, when it failed
	summaryUnreadable bool
}

// TestLoad is item 5 of "Prove it": eight sensor scripts call `uploader
// enqueue` (one reading per call) as fast as they can against one queue for
// -e2e.load, while `uploader flush` windows run back to back through one
// simulator to mochi. Nothing confirmed may be lost, and duplicates may only
// come from a window that failed. It logs the enqueue latency (p50, p99,
// max), the longest queue lock wait and the throughput.
func TestLoad(t *testing.T) {
	requireE2E(t)
	if *flagLoad <= 0 {
		t.Skip("-e2e.load is not positive")
	}
	s := newScenario(t, startMochi(t), "5")
	baseline := uncontendedEnqueue(t, s)
	sim := startSimulator(t, "")

	var (
		stats   loadStats
		stopped atomic.Bool
		loaders sync.WaitGroup
		flusher sync.WaitGroup
		windows []windowRun
	)
	start := time.Now()
	for producer := range loadProducers {
		loaders.Go(func() {
			topic := fmt.Sprintf("%s/load/%d", s.prefix, producer)
			for !stopped.Load() {
				ids := s.newIDs(1)
				r, err := tryUploader(t, processTimeout, "", nil,
					"enqueue", "--db", s.db, "--log-level", "debug", "--topic", topic, "--qos", "1", payload(ids[0]))
				if err != nil || r.code != 0 {
					s.led.uncertainCall(ids)
					stats.mu.Lock()
					stats.failed++
					n := stats.failed
					stats.mu.Unlock()
					if n <= 3 { // the first few say why; the count says how many
						t.Errorf("enqueue under load: %v %s", err, r)
					}
					continue
				}
				s.led.confirm(ids)
				stats.record(r.elapsed, r.stderr)
			}
		})
	}
	flusher.Go(func() {
		for !stopped.Load() {
			w := windowRun{firstDelivery: len(s.watch.Deliveries())}
			r, err := tryUploader(t, processTimeout, "", nil, s.windowArgs("flush", sim.path, s.brk.Addr())...)
			if err != nil {
				t.Errorf("flush under load: %v", err)
				return
			}
			s.checkNoSecret(r)
			w.code, w.elapsed = r.code, r.elapsed
			if m := flushRecordsLine.FindStringSubmatch(r.stdout); m != nil {
				w.acked, _ = strconv.Atoi(m[1])
				w.sent, _ = strconv.Atoi(m[2])
				w.queued, _ = strconv.Atoi(m[3])
			} else {
				w.summaryUnreadable = true
			}
			if r.code != 0 {
				w.failure = r.String()
			}
			windows = append(windows, w) // only this goroutine appends until flusher.Wait
		}
	})
	time.Sleep(*flagLoad) // the load's duration (-e2e.load): the behaviour under test
	stopped.Store(true)
	loaders.Wait()
	loadTime := time.Since(start)
	flusher.Wait()
	endOfLoad := len(s.watch.Deliveries())
	acc := sim.stop(t)
	if t.Failed() {
		t.FailNow()
	}

	// A failed window may leave what it sent unacknowledged; those records
	// are sent again, so they may arrive twice. Every delivery from the
	// start of a failed window to the start of the next one is in flight.
	deliveries := s.watch.Deliveries()
	inFlight := map[string]bool{}
	maxDups, ok, records := 0, 0, 0
	for i, w := range windows {
		if w.summaryUnreadable {
			t.Errorf("flush printed no records line: exit %d %s", w.code, w.failure)
		}
		records += w.acked
		if w.code == 0 {
			ok++
			continue
		}
		t.Logf("window %d failed after %v (%d of %d acknowledged, %d sent): %s", i, w.elapsed.Round(time.Millisecond), w.acked, w.queued, w.sent, w.failure)
		maxDups += w.sent - w.acked
		end := endOfLoad
		if i+1 < len(windows) {
			end = windows[i+1].firstDelivery
		}
		for _, d := range deliveries[w.firstDelivery:end] {
			inFlight[d.ID] = true
		}
	}
	if ok == 0 {
		t.Errorf("none of the %d windows during the load succeeded", len(windows))
	}

	last := s.cleanWindow()
	tl := s.account(maxDups, inFlight)

	stats.mu.Lock()
	defer stats.mu.Unlock()
	lat := slices.Clone(stats.latencies)
	slices.Sort(lat)
	calls := len(lat) + stats.failed
	t.Logf("load for %v (-e2e.load %v, race binary %v): %d enqueue calls from %d loops (%d failed), %.1f enqueues/s; %d windows (%d ok) sent %d records (%.1f records/s), %d TCP sessions; the last clean window sent %d",
		loadTime.Round(time.Millisecond), *flagLoad, *flagRace, calls, loadProducers, stats.failed, float64(len(lat))/loadTime.Seconds(),
		len(windows), ok, records, float64(records)/loadTime.Seconds(), acc.TCPConnections, last.Acked)
	t.Logf("enqueue latency (process start to exit): p50 %v, p99 %v, max %v; alone, before the load: %v",
		percentile(lat, 50).Round(time.Microsecond), percentile(lat, 99).Round(time.Microsecond), lat[len(lat)-1].Round(time.Microsecond), baseline.Round(time.Microsecond))
	if stats.lockWaits > 0 {
		t.Logf("longest queue lock wait: %v (the queue logged %d waits over 100 ms)", stats.maxLockWait.Round(time.Microsecond), stats.lockWaits)
	} else {
		t.Logf("longest queue lock wait: at most %v, the longest enqueue call: no enqueue logged a lock wait (the queue logs, at debug level, only waits over 100 ms: \"waited for queue lock\")",
			lat[len(lat)-1].Round(time.Microsecond))
	}
	if tl.enqueued == 0 || len(lat) < loadProducers {
		t.Errorf("the load enqueued only %d readings in %d calls", tl.enqueued, len(lat))
	}
}

// uncontendedEnqueue is the median wall time of a few enqueue calls with
// nothing else running: the part of a call under load that is not waiting.
func uncontendedEnqueue(t *testing.T, s *scenario) time.Duration {
	t.Helper()
	var lat []time.Duration
	for range 5 {
		ids := s.newIDs(1)
		r := runUploader(t, processTimeout, "", nil, "enqueue", "--db", s.db, "--log-level", "warn",
			"--topic", s.prefix+"/alone", "--qos", "1", payload(ids[0]))
		if r.code != 0 {
			t.Fatalf("enqueue before the load: %s", r)
		}
		s.led.confirm(ids)
		lat = append(lat, r.elapsed)
	}
	slices.Sort(lat)
	return lat[len(lat)/2]
}

// TestLoggedLockWaits checks TestLoad's reading of the queue's lock-wait
// log line against lines made by the same slog text handler the binary
// uses, so a wait the binary logs is not silently missed.
func TestLoggedLockWaits(t *testing.T) {
	logLine := func(attrs ...slog.Attr) string {
		var b strings.Builder
		slog.New(slog.NewTextHandler(&b, &slog.HandlerOptions{Level: slog.LevelDebug})).
			With(slog.String("queue", "/tmp/x y/queue.db")).
			LogAttrs(context.Background(), slog.LevelDebug, "waited for queue lock", attrs...)
		return b.String()
	}
	tests := []struct {
		name   string
		stderr string
		want   []time.Duration
	}{
		{"none", "", nil},
		{"milliseconds", logLine(slog.Duration("waited", 312500*time.Microsecond)), []time.Duration{312500 * time.Microsecond}},
		{"minutes", logLine(slog.Duration("waited", 62500*time.Millisecond)), []time.Duration{62500 * time.Millisecond}},
		{"two lines among others", "level=INFO msg=\"window done\" waited=9s\n" +
			logLine(slog.Duration("waited", 150*time.Millisecond)) + logLine(slog.Duration("waited", 2*time.Second)),
			[]time.Duration{150 * time.Millisecond, 2 * time.Second}},
		{"other message", logLine() + "level=DEBUG msg=\"queue opened\" waited=1s\n", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := loggedLockWaits(tc.stderr); !slices.Equal(got, tc.want) {
				t.Errorf("loggedLockWaits(%q) = %v, want %v", tc.stderr, got, tc.want)
			}
		})
	}
}
