package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nbiot-uploader/uploader/uplink/testkit"
)

// Window settings of every scenario: the simulator's fast profile answers
// at once, so these only bound what a fault stretches.
const (
	windowTimeout       = 20 * time.Second
	registrationTimeout = "2s"
	replyTimeout        = "3s"
	// radioOffBudget is the time uplink gives switching the radio off after
	// the window's own deadline (uplink/window.go).
	radioOffBudget = 15 * time.Second
	// faultyWindowDeadline is what a failed window may take in all.
	faultyWindowDeadline = windowTimeout + radioOffBudget + 5*time.Second
	// processTimeout bounds every child process the suite waits for.
	processTimeout = 90 * time.Second
)

var scenarioCount atomic.Int64

// scenario is one site: its queue file, client id, topics and ledger,
// delivering to one broker with one MQTT protocol level.
type scenario struct {
	t        *testing.T
	n        int64
	db       string
	pwFile   string
	prefix   string // every topic of the scenario starts with it
	clientID string
	version  string // --mqtt-version: "3.1.1" or "5"
	brk      broker
	watch    watcher
	led      *ledger
	nextID   atomic.Int64
	// pad, when not 0, pads the readings of ndjsonInput to about that many
	// bytes.
	pad int
}

func newScenario(t *testing.T, brk broker, version string) *scenario {
	t.Helper()
	n := scenarioCount.Add(1)
	dir := t.TempDir()
	s := &scenario{
		t: t, n: n, db: filepath.Join(dir, "queue.db"), pwFile: filepath.Join(dir, "mqtt-password"),
		prefix: fmt.Sprintf("e2e/site%d", n), clientID: fmt.Sprintf("e2e-site-%d", n),
		version: version, brk: brk, led: newLedger(),
	}
	if err := os.WriteFile(s.pwFile, []byte(brokerPassword+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s.watch = brk.Watch(t, s.prefix)
	return s
}

// newIDs returns n reading ids never used before in the suite run.
func (s *scenario) newIDs(n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("s%d-r%d", s.n, s.nextID.Add(1))
	}
	return ids
}

// payload is a realistic reading that carries its id.
func payload(id string) string {
	return fmt.Sprintf(`{"id":%q,"pm25":%d.%d,"unit":"ug/m3"}`, id, len(id)*3, len(id)%10)
}

// payload is payload(id), padded to about s.pad bytes. The padding sits
// in the middle, so a payload whose tail was replaced is no JSON.
func (s *scenario) payload(id string) string {
	p := payload(id)
	if len(p) >= s.pad {
		return p
	}
	return fmt.Sprintf(`{"id":%q,"pad":%q,"pm25":%d.%d,"unit":"ug/m3"}`, id, strings.Repeat("x", s.pad-len(p)-9), len(id)*3, len(id)%10)
}

func (s *scenario) enqueueArgs(extra ...string) []string {
	return append([]string{"enqueue", "--db", s.db, "--log-level", "warn"}, extra...)
}

// linesInput is the stdin of `enqueue --lines`.
func linesInput(ids []string) string {
	var b strings.Builder
	for _, id := range ids {
		b.WriteString(payload(id) + "\n")
	}
	return b.String()
}

// ndjsonInput is the stdin of `enqueue --ndjson`, topics spread over three.
func (s *scenario) ndjsonInput(ids []string, qos int) string {
	var b strings.Builder
	for i, id := range ids {
		line, _ := json.Marshal(map[string]any{"topic": fmt.Sprintf("%s/nd/%d", s.prefix, i%3), "payload": s.payload(id), "qos": qos})
		b.Write(line)
		b.WriteByte('\n')
	}
	return b.String()
}

// enqueueConcurrently stores n readings at QoS qos from several processes
// running at once: one `--lines` call, one `--ndjson` call and a few
// single-reading calls. Every call must exit 0.
func (s *scenario) enqueueConcurrently(n, qos int) {
	t := s.t
	t.Helper()
	singles := min(8, n/5)
	ids := s.newIDs(n)
	single, rest := ids[:singles], ids[singles:]
	lines, nd := rest[:len(rest)/2], rest[len(rest)/2:]
	q := fmt.Sprint(qos)
	type call struct {
		ids   []string
		stdin string
		args  []string
	}
	batches := [][]call{
		{{lines, linesInput(lines), s.enqueueArgs("--topic", s.prefix+"/lines", "--qos", q, "--lines")}},
		{{nd, s.ndjsonInput(nd, qos), s.enqueueArgs("--ndjson")}},
		nil, nil,
	}
	for i, id := range single {
		batches[2+i%2] = append(batches[2+i%2], call{[]string{id}, "", s.enqueueArgs("--topic", s.prefix+"/single", "--qos", q, payload(id))})
	}
	var wg sync.WaitGroup
	for _, calls := range batches {
		wg.Go(func() {
			for _, c := range calls {
				r, err := tryUploader(t, processTimeout, c.stdin, nil, c.args...)
				if err != nil || r.code != 0 {
					t.Errorf("enqueue of %d reading(s): %v %s", len(c.ids), err, r)
					continue
				}
				s.led.confirm(c.ids)
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
}

// windowArgs are the flags of `flush` and `run` for device and broker.
func (s *scenario) windowArgs(command, device, brokerAddr string, extra ...string) []string {
	return append([]string{command, "--db", s.db, "--device", device, "--broker", brokerAddr, "--apn", "iot",
		"--client-id", s.clientID, "--username", brokerUser, "--password-file", s.pwFile,
		"--mqtt-version", s.version, "--window-timeout", windowTimeout.String(),
		"--registration-timeout", registrationTimeout, "--reply-timeout", replyTimeout, "--log-level", "info"}, extra...)
}

// flush runs one window through device to the scenario's broker.
func (s *scenario) flush(device string, extra ...string) result {
	s.t.Helper()
	return s.flushTo(device, s.brk.Addr(), extra...)
}

func (s *scenario) flushTo(device, brokerAddr string, extra ...string) result {
	s.t.Helper()
	r := runUploader(s.t, processTimeout, "", nil, s.windowArgs("flush", device, brokerAddr, extra...)...)
	s.checkNoSecret(r)
	return r
}

// checkNoSecret fails when the broker password shows in a process' output.
func (s *scenario) checkNoSecret(r result) {
	s.t.Helper()
	if strings.Contains(r.stdout, brokerPassword) || strings.Contains(r.stderr, brokerPassword) {
		s.t.Errorf("the MQTT password appears in the output:\n%s", r)
	}
}

// statusReport is the part of `status --json` the suite reads.
type statusReport struct {
	Depth      int64          `json:"depth"`
	LastSeq    uint64         `json:"last_seq"`
	LastWindow *windowSummary `json:"last_window"`
}

type windowSummary struct {
	Outcome       string `json:"outcome"`
	Step          string `json:"step"`
	Error         string `json:"error"`
	Queued        int64  `json:"queued"`
	Sent          int    `json:"sent"`
	Acked         int    `json:"acked"`
	Chunks        int    `json:"chunks"`
	RadioOffError string `json:"radio_off_error"`
}

func (s *scenario) status() statusReport {
	s.t.Helper()
	r := runUploader(s.t, processTimeout, "", nil, "status", "--db", s.db, "--json", "--log-level", "warn")
	if r.code != 0 {
		s.t.Fatalf("status: %s", r)
	}
	var st statusReport
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil {
		s.t.Fatalf("status --json: %v\n%s", err, r.stdout)
	}
	return st
}

// radioAnswer asks the module AT+CFUN? through `uploader modem at`.
func (s *scenario) radioAnswer(device string) result {
	s.t.Helper()
	return runUploader(s.t, processTimeout, "", nil, "modem", "at", "--db", s.db, "--device", device,
		"--timeout", "3s", "--modem-lock-timeout", "5s", "--log-level", "warn", "AT+CFUN?")
}

// checkRadioOff fails unless the module answers +CFUN: 0.
func (s *scenario) checkRadioOff(device string) {
	s.t.Helper()
	if r := s.radioAnswer(device); r.code != 0 || !strings.Contains(r.stdout, "+CFUN: 0") {
		s.t.Errorf("the radio is not switched off after the window: AT+CFUN? -> %s", r)
	}
}

// cleanWindow runs a window through a fresh simulator without faults; it
// must succeed and empty the queue. It runs even when the queue is empty
// already (--empty-window connect), so it always proves a clean window
// leaves the radio off.
func (s *scenario) cleanWindow() windowSummary {
	t := s.t
	t.Helper()
	sim := startSimulator(t, "")
	r := s.flush(sim.path, "--empty-window", "connect")
	if r.code != 0 {
		t.Fatalf("clean window: %s", r)
	}
	s.checkRadioOff(sim.path)
	sim.stop(t)
	st := s.status()
	if st.Depth != 0 || st.LastWindow == nil || st.LastWindow.Outcome != "ok" {
		t.Fatalf("after a clean window: depth %d, last window %+v", st.Depth, st.LastWindow)
	}
	return *st.LastWindow
}

// stableDeliveries waits until nothing new has arrived for a while (the
// broker routes asynchronously to the window's acknowledgements). It is
// the suite's one remaining quiet-period wait: a late duplicate has no
// event to wait for short of a marker message published after the window,
// which the suite's subscriber-only MQTT client cannot send yet.
func (s *scenario) stableDeliveries() []delivery {
	last, since := -1, time.Now()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		n := len(s.watch.Deliveries())
		if n != last {
			last, since = n, time.Now()
		} else if time.Since(since) > 300*time.Millisecond {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	return s.watch.Deliveries()
}

// account waits for every confirmed reading, then checks: nothing lost,
// nothing unexpected, no transaction torn, at most maxDups duplicates and
// each of them one of inFlight (nil: any), and with MQTT 5 a consistent
// "seq". It logs the tally.
func (s *scenario) account(maxDups int, inFlight map[string]bool) tally {
	t := s.t
	t.Helper()
	// Missing readings are reported below: the wait only gives routing
	// time to finish.
	testkit.WaitUntil(10*time.Second, func() bool { return s.led.allConfirmedIn(s.watch.Deliveries()) })
	ds := s.stableDeliveries()
	if err := s.watch.Err(); err != nil {
		t.Errorf("the subscriber lost its connection, so its count proves nothing: %v", err)
	}
	tl := s.led.tally(ds)
	t.Logf("accounting on %s: %s", s.brk.Name(), tl)
	if len(tl.lost) > 0 {
		t.Errorf("LOST %d of %d enqueued readings: %s", len(tl.lost), tl.enqueued, firstN(tl.lost, 10))
	}
	if len(tl.unexpected) > 0 {
		t.Errorf("received %d readings that were never enqueued: %s", len(tl.unexpected), firstN(tl.unexpected, 10))
	}
	if len(tl.garbled) > 0 {
		t.Errorf("%d PUBLISH(es) whose payload is no reading reached the broker (corrupted data): %s", len(tl.garbled), firstN(tl.garbled, 10))
	}
	if len(tl.torn) > 0 {
		t.Errorf("enqueue calls that arrived in part (one call must be one transaction): %s", firstN(tl.torn, 10))
	}
	if d := tl.duplicates(); d > 0 {
		var ids []string
		for id := range tl.dups {
			ids = append(ids, id)
			if inFlight != nil && !inFlight[id] {
				t.Errorf("duplicate of %s, which was not in flight when the fault hit", id)
			}
		}
		t.Logf("%d duplicate(s) of records in flight when the fault hit: %s", d, firstN(ids, 10))
		if d > maxDups {
			t.Errorf("%d duplicates, but only %d records were in flight", d, maxDups)
		}
	}
	if s.version == "5" {
		if p := seqProblems(ds); len(p) > 0 {
			t.Errorf("MQTT 5 seq property: %s", firstN(p, 10))
		}
	}
	return tl
}

func idSet(ds []delivery) map[string]bool {
	m := make(map[string]bool, len(ds))
	for _, d := range ds {
		m[d.ID] = true
	}
	return m
}
