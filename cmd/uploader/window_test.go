package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/nbiot-uploader/uploader/uplink/brokertest"
	"github.com/nbiot-uploader/uploader/uplink/modemsim"
	"github.com/nbiot-uploader/uploader/uplink/modemsim/simtest"
	"github.com/nbiot-uploader/uploader/uplink/testkit"
)

func startBroker(t *testing.T) *brokertest.Broker {
	t.Helper()
	b, err := brokertest.Start(brokertest.Options{Username: "u", Password: "pw"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func TestFlushThroughSimulator(t *testing.T) {
	broker := startBroker(t)
	sim := simtest.StartFaults(t, "")
	db := tempDB(t)
	if code, _, e := runApp(t, "1\n2\n3\n4\n5\n", "enqueue", "--db", db, "--topic", "s/1/t", "--lines"); code != 0 {
		t.Fatal(e)
	}
	t.Setenv("UPLOADER_PASSWORD", "pw")
	code, out, stderr := runApp(t, "", "flush", "--db", db, "--device", sim.Path(), "--broker", broker.Addr(),
		"--username", "u", "--apn", "iot", "--mqtt-version", "5")
	if code != 0 {
		t.Fatalf("flush exit %d\nstdout:\n%s\nstderr:\n%s", code, out, stderr)
	}
	for _, want := range []string{"outcome:        ok", "5 acknowledged, 5 sent (5 queued when the window started", "radio on:", "chunks"} {
		if !strings.Contains(out, want) {
			t.Errorf("summary lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(stderr, "pw") {
		t.Errorf("the password appears in the logs: %s", stderr)
	}
	if !broker.WaitCount(5, 3*time.Second) {
		t.Errorf("broker got %d", broker.Count())
	}
	code, js, _ := runApp(t, "", "status", "--db", db, "--json")
	var r statusReport
	if code != 0 || json.Unmarshal([]byte(js), &r) != nil || r.Depth != 0 || r.LastWindow == nil || !r.LastWindow.OK() {
		t.Errorf("status after flush: %s", js)
	}
}

func TestFlushFailureExitsOne(t *testing.T) {
	broker := startBroker(t)
	sim := simtest.StartFaults(t, "connect-fail")
	db := tempDB(t)
	if code, _, e := runApp(t, "", "enqueue", "--db", db, "--topic", "a", "x"); code != 0 {
		t.Fatal(e)
	}
	code, out, stderr := runApp(t, "", "flush", "--db", db, "--device", sim.Path(), "--broker", broker.Addr(), "--username", "u", "--password", "pw")
	if code != 1 {
		t.Fatalf("exit %d, want 1\n%s\n%s", code, out, stderr)
	}
	if !strings.Contains(stderr, "tcp connect") || !strings.Contains(out, "outcome:        failed") {
		t.Errorf("failure not named:\nstdout %s\nstderr %s", out, stderr)
	}
	if n := len(readAll(t, db)); n != 1 {
		t.Errorf("%d records left, want 1", n)
	}
	code, out, _ = runApp(t, "", "status", "--db", db)
	if code != 0 || !strings.Contains(out, "last window:    failed") || !strings.Contains(out, "last error:") {
		t.Errorf("status:\n%s", out)
	}
}

func TestDemo(t *testing.T) {
	code, out, stderr := runApp(t, "", "demo", "--readings", "40", "--sim-baud", "0")
	if code != 0 {
		t.Fatalf("demo exit %d\n%s\n%s", code, out, stderr)
	}
	for _, want := range []string{"enqueued 40 readings", "missing 0", "left in queue 0", "window ok"} {
		if !strings.Contains(out, want) {
			t.Errorf("demo output lacks %q:\n%s", want, out)
		}
	}
}

func TestModemCheckAndAT(t *testing.T) {
	sim := simtest.StartFaults(t, "")
	db := tempDB(t)
	code, out, stderr := runApp(t, "", "modem", "check", "--db", db, "--device", sim.Path())
	if code != 0 {
		t.Fatalf("modem check exit %d\n%s\n%s", code, out, stderr)
	}
	for _, want := range []string{"SIM:            READY", "registration:   registered", "signal:         CSQ", "firmware:"} {
		if !strings.Contains(out, want) {
			t.Errorf("modem check lacks %q:\n%s", want, out)
		}
	}
	if sim.RadioOn() {
		t.Error("modem check left the radio on")
	}
	code, out, stderr = runApp(t, "", "modem", "at", "--db", db, "--device", sim.Path(), "AT+CSQ")
	if code != 0 || !strings.Contains(out, "+CSQ:") || !strings.Contains(out, "OK") {
		t.Errorf("modem at: exit %d\n%s\n%s", code, out, stderr)
	}
	code, out, _ = runApp(t, "", "modem", "at", "--db", db, "--device", sim.Path(), "AT+NOSUCH")
	if code != 1 || !strings.Contains(out, "ERROR") {
		t.Errorf("unknown command: exit %d\n%s", code, out)
	}
}

func TestModemCheckWeakSignal(t *testing.T) {
	cfg := modemsim.Fast()
	cfg.CSQ = 9
	sim := simtest.Start(t, cfg)
	code, out, _ := runApp(t, "", "modem", "check", "--db", tempDB(t), "--device", sim.Path())
	if code != 1 || !strings.Contains(out, "re-aim the antenna") {
		t.Errorf("weak signal: exit %d\n%s", code, out)
	}
}

func TestSimulateCommand(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var out, errb testkit.SyncBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"uploader", "simulate", "--faults", "garbage=5"}, strings.NewReader(""), &out, &errb)
	}()
	// The device path is the simulator's first line: it is serving.
	if !out.WaitFor("\n", 10*time.Second) {
		t.Fatalf("simulate printed no device path; stderr: %s", errb.String())
	}
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("simulate exit %d: %s", code, errb.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("simulate did not stop on cancel")
	}
	first, _, _ := strings.Cut(out.String(), "\n")
	if !strings.HasPrefix(first, "/dev/pts/") {
		t.Errorf("first line %q is not a device path", first)
	}
	if !strings.Contains(out.String(), `"radio_on_seconds"`) {
		t.Errorf("no accounting JSON on exit:\n%s", out.String())
	}
	code, _, stderr := runApp(t, "", "simulate", "--faults", "explode=1")
	if code != 2 || !strings.Contains(stderr, "--faults") {
		t.Errorf("bad fault: exit %d %q", code, stderr)
	}
}

// The daemon runs windows on its schedule and ends cleanly (exit 0, radio
// off) when its context is cancelled, as SIGTERM does.
func TestRunDaemon(t *testing.T) {
	broker := startBroker(t)
	sim := simtest.StartFaults(t, "")
	db := tempDB(t)
	if code, _, e := runApp(t, "a\nb\nc\n", "enqueue", "--db", db, "--topic", "s/1", "--lines"); code != 0 {
		t.Fatal(e)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errb testkit.SyncBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"uploader", "run", "--db", db, "--device", sim.Path(), "--broker", broker.Addr(),
			"--username", "u", "--password", "pw", "--apn", "iot", "--schedule", "@every 1s"}, strings.NewReader(""), &out, &errb)
	}()
	if !errb.WaitFor("window done", 20*time.Second) {
		t.Fatalf("no window done; log:\n%s", errb.String())
	}
	if !broker.WaitCount(3, 5*time.Second) {
		t.Fatalf("daemon delivered %d of 3", broker.Count())
	}
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("run exit %d after cancel; log:\n%s", code, errb.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("run did not stop after cancel")
	}
	if !strings.Contains(errb.String(), "window done") || !strings.Contains(errb.String(), "uploader daemon stopped") {
		t.Errorf("daemon log lacks the window line:\n%s", errb.String())
	}
	if sim.RadioOn() {
		t.Error("radio on after the daemon stopped")
	}
}
