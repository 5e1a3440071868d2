package main

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nbiot-uploader/uploader/queue"
	"github.com/nbiot-uploader/uploader/uplink/modemsim/simtest"
	"github.com/nbiot-uploader/uploader/uplink/testkit"
)

// startDaemon runs `uploader run` in-process until the returned stop is
// called; stop cancels it, as SIGTERM does, and returns its exit code.
func startDaemon(t *testing.T, args ...string) (log *testkit.SyncBuffer, stop func() int) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	log = &testkit.SyncBuffer{}
	var out testkit.SyncBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, append([]string{"uploader", "run"}, args...), strings.NewReader(""), &out, log)
	}()
	stopped := false
	code := -1
	stop = func() int {
		t.Helper()
		if stopped {
			return code
		}
		stopped = true
		cancel()
		select {
		case code = <-done:
		case <-time.After(30 * time.Second):
			t.Fatalf("run did not stop 30 s after its context was cancelled; log:\n%s", log.String())
		}
		return code
	}
	t.Cleanup(func() { stop() })
	return log, stop
}

// waitLog waits until the log holds every one of want, or the daemon
// exits, or a generous safety deadline passes.
func waitLog(t *testing.T, log *testkit.SyncBuffer, want ...string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		s := log.String()
		if !slices.ContainsFunc(want, func(w string) bool { return !strings.Contains(s, w) }) {
			return
		}
		if strings.Contains(s, "uploader daemon stopped") || strings.Contains(s, "uploader: ") {
			t.Fatalf("the daemon ended before logging %q; log:\n%s", want, s)
		}
		if time.Now().After(deadline) {
			t.Fatalf("the daemon did not log %q in 30 s; log:\n%s", want, s)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// storedSummary is the last window's summary the queue holds (nil when no
// window ran) and the depth.
func storedSummary(t *testing.T, db string) ([]byte, int64) {
	t.Helper()
	q, err := queue.Open(db, nil)
	if err != nil {
		t.Fatalf("open queue: %v", err)
	}
	defer q.Close()
	raw, err := q.WindowSummary()
	if err != nil {
		t.Fatal(err)
	}
	st, err := q.Stats()
	if err != nil {
		t.Fatal(err)
	}
	return raw, st.Depth
}

// The daemon owns the radio from its first second: a module that booted
// with its radio on is switched off at start-up, not at the end of the
// first window (an hour or a year later), and no window runs before its
// slot. With a power switch the start-up cuts the module's supply without
// a word to it.
func TestRunSwitchesRadioOffAtStartUp(t *testing.T) {
	tests := []struct {
		name        string
		powerSwitch bool
	}{
		{"AT+CFUN=0", false},
		{"power switch", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			broker := startBroker(t)
			sim := simtest.StartFaults(t, "") // Fast boots powered, with CFUN=1
			if !sim.PoweredOn() || !sim.RadioOn() {
				t.Fatalf("the simulator did not boot with its radio on (powered %v, radio %v)", sim.PoweredOn(), sim.RadioOn())
			}
			db := tempDB(t)
			if code, _, e := runApp(t, "a\nb\nc\n", "enqueue", "--db", db, "--topic", "s/1", "--lines"); code != 0 {
				t.Fatal(e)
			}
			args := []string{"--db", db, "--device", sim.Path(), "--broker", broker.Addr(), "--username", "u", "--password", "pw",
				"--apn", "iot", "--schedule", "@yearly"}
			var ps *powerSwitch
			if tt.powerSwitch {
				ps = newPowerSwitch(t, sim)
				args = append(args, "--power-on-cmd", ps.on, "--power-off-cmd", ps.off, "--boot-wait", "0s")
			}
			log, stop := startDaemon(t, args...)
			waitLog(t, log, "radio off until the first window", "next window")

			// status reads the daemon's stored plan and sees it running; a
			// second daemon on the same queue is refused.
			code, out, _ := runApp(t, "", "status", "--db", db, "--json")
			var st statusReport
			if err := json.Unmarshal([]byte(out), &st); code != 0 || err != nil {
				t.Fatalf("status: exit %d, %v\n%s", code, err, out)
			}
			if !st.Daemon.Running || !strings.Contains(st.Daemon.Holder, "uploader run") || st.NextWindow == nil ||
				st.NextWindow.Retry || st.NextWindow.At.Year() != time.Now().Year()+1 {
				t.Errorf("status while the daemon runs: daemon %+v, plan %+v", st.Daemon, st.NextWindow)
			}
			if code, _, stderr := runApp(t, "", append([]string{"run"}, args...)...); code != 1 || !strings.Contains(stderr, "daemon already running") {
				t.Errorf("a second daemon on the same queue: exit %d, %s", code, stderr)
			}

			if sim.RadioOn() {
				t.Errorf("the radio is still on after the daemon's start-up; log:\n%s", log.String())
			}
			if tt.powerSwitch {
				if got := ps.Flips(); !slices.Equal(got, []string{"0"}) {
					t.Errorf("power switch flips %v at start-up, want one cut [0]", got)
				}
				if sim.PoweredOn() {
					t.Error("the module still has power after the start-up cut it")
				}
				if n := sim.Accounting().ATCommands; n != 0 {
					t.Errorf("the module heard %d AT command(s) before its supply was cut", n)
				}
			} else if n := sim.Accounting().ATCommands; n == 0 {
				t.Error("the radio went off without an AT command (AT+CFUN=0 expected)")
			}

			if code := stop(); code != 0 {
				t.Fatalf("run exit %d after cancel; log:\n%s", code, log.String())
			}
			s := log.String()
			for _, w := range []string{"window done", "window failed", "window skipped"} {
				if strings.Contains(s, w) {
					t.Errorf("a window ran although the next one is a year away (%q in the log):\n%s", w, s)
				}
			}
			if raw, depth := storedSummary(t, db); raw != nil || depth != 3 {
				t.Errorf("after the daemon: stored summary %s, depth %d; want no window and 3 records queued", raw, depth)
			}
			if broker.Count() != 0 {
				t.Errorf("the broker received %d message(s)", broker.Count())
			}
			if sim.RadioOn() {
				t.Error("the radio is on after the daemon stopped")
			}
		})
	}
}
