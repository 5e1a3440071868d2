package main

import (
	"errors"
	"io/fs"
	"os"
	"strings"
	"testing"

	"github.com/nbiot-uploader/uploader/queue"
	"github.com/nbiot-uploader/uploader/uplink"
	"github.com/nbiot-uploader/uploader/uplink/modemsim/simtest"
)

// windowSkips reads the skipped-window counts the queue holds.
func windowSkips(t *testing.T, db string) uplink.WindowSkips {
	t.Helper()
	q, err := queue.Open(db, nil)
	if err != nil {
		t.Fatalf("open queue: %v", err)
	}
	defer q.Close()
	s, err := uplink.ReadWindowSkips(q)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// With nothing queued, flush does not bring the radio up: it says so,
// exits 0, the module hears nothing, and the last window `status` shows is
// still none (the skip is only counted). --empty-window connect runs the
// window anyway; an unknown policy is bad input.
func TestFlushEmptyQueue(t *testing.T) {
	broker := startBroker(t)
	sim := simtest.StartFaults(t, "")
	db := tempDB(t)
	createEmptyQueue(t, db)
	flush := func(extra ...string) (int, string, string) {
		t.Helper()
		return runApp(t, "", append([]string{"flush", "--db", db, "--device", sim.Path(), "--broker", broker.Addr(),
			"--username", "u", "--password", "pw", "--apn", "iot"}, extra...)...)
	}

	code, out, stderr := flush()
	if code != 0 || !strings.Contains(out, "outcome:        skipped") || !strings.Contains(out, "nothing queued") {
		t.Fatalf("flush of an empty queue: exit %d, want 0 and outcome skipped\nstdout:\n%s\nstderr:\n%s", code, out, stderr)
	}
	if strings.Contains(out, "records:") {
		t.Errorf("a skipped window printed a window's figures:\n%s", out)
	}
	if n := sim.Accounting().ATCommands; n != 0 {
		t.Errorf("the module heard %d AT command(s) in a skipped window", n)
	}
	if code, out, _ := runApp(t, "", "status", "--db", db); code != 0 || !strings.Contains(out, "last window:    none yet") {
		t.Errorf("status after a skipped window: exit %d, want \"last window:    none yet\":\n%s", code, out)
	}
	if s := windowSkips(t, db); s.Empty != 1 || s.Busy != 0 || s.LastReason != "empty" {
		t.Errorf("window skips %+v, want one empty window counted", s)
	}

	code, out, stderr = flush("--empty-window", "bogus")
	if code != 2 || !strings.Contains(stderr, `--empty-window "bogus"`) || strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
		t.Errorf("--empty-window bogus: exit %d, want 2 and one line naming the flag\nstdout:\n%s\nstderr:\n%s", code, out, stderr)
	}
	if n := sim.Accounting().ATCommands; n != 0 {
		t.Errorf("the module heard %d AT command(s) after bad input", n)
	}
	if s := windowSkips(t, db); s.Empty != 1 {
		t.Errorf("window skips %+v after bad input, want it unchanged", s)
	}

	code, out, stderr = flush("--empty-window", "connect")
	if code != 0 || !strings.Contains(out, "outcome:        ok") || !strings.Contains(out, "0 acknowledged, 0 sent (0 queued") {
		t.Fatalf("--empty-window connect: exit %d, want 0 and a window run\nstdout:\n%s\nstderr:\n%s", code, out, stderr)
	}
	if n := sim.Accounting().ATCommands; n == 0 {
		t.Error("--empty-window connect did not bring the module up")
	}
	if sim.RadioOn() {
		t.Error("--empty-window connect left the radio on")
	}
	if code, out, _ := runApp(t, "", "status", "--db", db); code != 0 || !strings.Contains(out, "last window:    ok") {
		t.Errorf("status after --empty-window connect: exit %d, want the window as the last one:\n%s", code, out)
	}
}

// An unknown --empty-window is refused before anything is opened: no queue
// file is created.
func TestFlushBadEmptyWindowWritesNothing(t *testing.T) {
	db := tempDB(t)
	code, out, stderr := runApp(t, "", "flush", "--db", db, "--transport", "tcp", "--broker", "127.0.0.1:1883", "--empty-window", "bogus")
	if code != 2 || !strings.Contains(stderr, "--empty-window") {
		t.Fatalf("exit %d, want 2 naming --empty-window\nstdout:\n%s\nstderr:\n%s", code, out, stderr)
	}
	if _, err := os.Stat(db); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("bad input created the queue file: %v", err)
	}
}

// createEmptyQueue makes a queue file with nothing in it (status, being
// read-only, creates none).
func createEmptyQueue(t *testing.T, db string) {
	t.Helper()
	q, err := queue.Open(db, nil)
	if err == nil {
		_, err = q.Stats() // the file is made on first use
		q.Close()
	}
	if err != nil {
		t.Fatal(err)
	}
}
