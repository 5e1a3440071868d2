package e2e

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"
)

// twoWindowReadings is enough for one `flush --inflight 1` to take seconds
// (each acknowledgement is a committed delete): a second flush started
// after the first delivery meets the first one still running.
const twoWindowReadings = 2000

// TestSecondWindowOnTheSameQueue: a second `flush` on the same --db while
// one is draining it, over tcp whatever the first one's transport, fails at
// once (exit 1, "window busy" naming the first one's pid), never reaches
// the broker, and leaves the first window's summary as the last window;
// every reading arrives exactly once. Before the window lock both windows
// drained the queue: 3,000 readings arrived as 5,926 deliveries.
func TestSecondWindowOnTheSameQueue(t *testing.T) {
	requireE2E(t)
	brk := startMosquitto(t)
	for _, transport := range []string{"tcp", "modem"} {
		t.Run("first over "+transport, func(t *testing.T) {
			s := newScenario(t, brk, "3.1.1")
			ids := s.newIDs(twoWindowReadings)
			if r := runUploader(t, processTimeout, linesInput(ids), nil,
				s.enqueueArgs("--topic", s.prefix+"/bulk", "--qos", "1", "--lines")...); r.code != 0 {
				t.Fatalf("enqueue: %s", r)
			}
			s.led.confirm(ids)

			device := "/dev/null" // not opened by a tcp window
			var sim *simulator
			firstArgs := []string{"--inflight", "1"}
			if transport == "modem" {
				sim = startSimulator(t, "")
				device = sim.path
			} else {
				firstArgs = append(firstArgs, "--transport", "tcp")
			}
			first := startUploader(t, nil, nil, s.windowArgs("flush", device, brk.Addr(), firstArgs...)...)

			// The first window is draining once the subscriber has a reading.
			deadline := time.Now().Add(2 * time.Minute)
			for len(s.watch.Deliveries()) == 0 {
				if first.exited() {
					t.Fatalf("the first flush ended before the broker routed a reading: %s", first.result())
				}
				if time.Now().After(deadline) {
					t.Fatalf("no reading reached the broker in 2 min; first flush's log:\n%s", first.stderr.String())
				}
				time.Sleep(10 * time.Millisecond)
			}

			secondProc := startUploader(t, nil, nil, s.windowArgs("flush", "/dev/null", brk.Addr(), "--transport", "tcp")...)
			second := secondProc.mustWait(t, processTimeout)
			s.checkNoSecret(second)
			firstRunning := !first.exited()
			a := first.mustWait(t, 5*time.Minute)
			s.checkNoSecret(a)
			t.Logf("second flush: exit %d after %v; first flush (%s): exit %d after %v",
				second.code, second.elapsed.Round(time.Millisecond), transport, a.code, a.elapsed.Round(time.Millisecond))

			pid := "pid " + strconv.Itoa(first.cmd.Process.Pid) + " (uploader flush)"
			if second.code != 1 || !strings.Contains(second.stderr, "window busy") || !strings.Contains(second.stderr, pid) {
				t.Errorf("second flush while the first drains the queue: want exit 1 with \"window busy\" naming %q: %s", pid, second)
			}
			if !strings.Contains(second.stdout, "outcome:        failed") || !strings.Contains(second.stdout, "0 acknowledged, 0 sent") {
				t.Errorf("second flush's summary: want failed, nothing sent:\n%s", second.stdout)
			}
			// It failed at once rather than after waiting for the lock: it
			// was done while the first one still ran.
			if !firstRunning || !secondProc.end.Before(first.end) {
				t.Errorf("the second flush did not end while the first one ran (ended %v, first ended %v)",
					secondProc.end.Format(time.RFC3339Nano), first.end.Format(time.RFC3339Nano))
			}
			if a.code != 0 || !strings.Contains(a.stdout, fmt.Sprintf("%d acknowledged, %d sent", twoWindowReadings, twoWindowReadings)) {
				t.Errorf("first flush: %s", a)
			}
			if n := strings.Count(brk.p.stderr.String(), " as "+s.clientID+" ("); n != 1 {
				t.Errorf("mosquitto logged %d connections of client %s, want the first window's alone:\n%s", n, s.clientID, brk.p.stderr.String())
			}

			st := statusJSON(t, s)
			lw := st.LastWindow
			if st.Depth != 0 || lw == nil || lw.Outcome != "ok" || lw.Step != "" || lw.Transport != transport ||
				lw.Acked != twoWindowReadings || lw.Queued != twoWindowReadings {
				t.Errorf("status after both: depth %d, last window %+v; want the first window's (ok, %s, %d acknowledged)",
					st.Depth, lw, transport, twoWindowReadings)
			}
			if skips := readSkips(t, s.db); skips.Busy != 1 || skips.LastReason != "busy" {
				t.Errorf("window skips %+v, want the refused window counted as busy", skips)
			}
			if sim != nil {
				s.checkRadioOff(sim.path)
				sim.stop(t)
			}
			tl := s.account(0, nil)
			if got := len(s.watch.Deliveries()); got != twoWindowReadings {
				t.Errorf("%d deliveries of %d readings (%d distinct)", got, twoWindowReadings, len(tl.received))
			}
		})
	}
}

// lastWindowReport is the part of `status --json` this test reads.
type lastWindowReport struct {
	Depth      int64 `json:"depth"`
	LastWindow *struct {
		Outcome   string `json:"outcome"`
		Step      string `json:"step"`
		Transport string `json:"transport"`
		Queued    int64  `json:"queued"`
		Acked     int    `json:"acked"`
		Error     string `json:"error"`
	} `json:"last_window"`
}

func statusJSON(t *testing.T, s *scenario) lastWindowReport {
	t.Helper()
	r := runUploader(t, processTimeout, "", nil, "status", "--db", s.db, "--json", "--log-level", "warn")
	var st lastWindowReport
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &st) != nil {
		t.Fatalf("status --json: %s", r)
	}
	return st
}

// windowSkips is what `status --json` counts of skipped windows.
type windowSkips struct {
	Busy       uint64 `json:"busy"`
	Empty      uint64 `json:"empty"`
	LastReason string `json:"last_reason"`
}

// readSkips reads the skipped-window counts through `status --json`.
func readSkips(t *testing.T, db string) windowSkips {
	t.Helper()
	r := runUploader(t, processTimeout, "", nil, "status", "--db", db, "--json", "--log-level", "warn")
	var st struct {
		SkippedWindows windowSkips `json:"skipped_windows"`
	}
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &st) != nil {
		t.Fatalf("status --json: %s", r)
	}
	return st.SkippedWindows
}
