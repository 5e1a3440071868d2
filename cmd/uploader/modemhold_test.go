package main

import (
	"bytes"
	"context"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nbiot-uploader/uploader/uplink/modemsim/simtest"
)

// writeMidPacketMark leaves the mark a window that died in the middle of a
// split PUBLISH leaves beside the modem lock of db: the broker may hold
// part of a packet for another hour.
func writeMidPacketMark(t *testing.T, db string) string {
	t.Helper()
	path := db + ".modem.midpacket"
	until := time.Now().Add(time.Hour).UTC().Format(time.RFC3339Nano)
	if err := os.WriteFile(path, []byte("mid-packet until "+until+" hold 1h30m0s\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// `modem check` with a power switch meets a dead window's interrupted send
// as a window does: it power-cycles the module instead of waiting out the
// hour, so nothing the module hears can complete the PUBLISH the broker
// holds part of, and it empties the mark.
func TestModemCheckPowerCyclesAfterInterruptedSend(t *testing.T) {
	sim := simtest.StartFaults(t, "")
	ps := newPowerSwitch(t, sim)
	db := tempDB(t)
	mark := writeMidPacketMark(t, db)
	createEmptyQueue(t, db)
	if code, out, _ := runApp(t, "", "status", "--db", db); code != 0 || !strings.Contains(out, "interrupted:") {
		t.Fatalf("status does not report the mark: exit %d\n%s", code, out)
	}

	// runApp's context ends after 2 minutes: a check that waited for the
	// mark's hour would fail on it.
	code, out, stderr := runApp(t, "", "modem", "check", "--db", db, "--device", sim.Path(),
		"--power-on-cmd", ps.on, "--power-off-cmd", ps.off, "--boot-wait", "0s")
	if code != 0 || !strings.Contains(out, "SIM:            READY") || !strings.Contains(out, "registration:   registered") {
		t.Fatalf("modem check after an interrupted send: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, stderr)
	}
	if !strings.Contains(stderr, "power-cycling the module") {
		t.Errorf("the check did not say it power-cycled the module:\n%s", stderr)
	}
	if strings.Contains(stderr, "waiting for the broker") {
		t.Errorf("the check waited although a power switch is configured:\n%s", stderr)
	}
	// Off and on (the cycle, before the module hears a byte), then the
	// check's own teardown cuts the supply again.
	if got := ps.Flips(); !slices.Equal(got, []string{"0", "1", "0"}) {
		t.Errorf("power switch flips %v, want [0 1 0]: a cycle first, the cut at the end", got)
	}
	if sim.PoweredOn() {
		t.Error("the module has power after the check")
	}
	if b, err := os.ReadFile(mark); err != nil || len(bytes.TrimSpace(b)) != 0 {
		t.Errorf("mid-packet mark after the power cycle: %q, %v; want it emptied", b, err)
	}
	if code, out, _ := runApp(t, "", "status", "--db", db); code != 0 || strings.Contains(out, "interrupted:") {
		t.Errorf("status still reports an interrupted send: exit %d\n%s", code, out)
	}
}

// Without a power switch, `modem at` must not send the module a byte while
// the broker may still hold part of a PUBLISH: it waits for the mark's
// time, and a deadline that comes first ends it with the step named and
// the mark left in place.
func TestModemATWaitsOutInterruptedSend(t *testing.T) {
	sim := simtest.StartFaults(t, "")
	db := tempDB(t)
	mark := writeMidPacketMark(t, db)
	before, err := os.ReadFile(mark)
	if err != nil {
		t.Fatal(err)
	}
	// What a SIGTERM or a supervisor's timeout does to the process: the
	// command's context ends.
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	var out, errb bytes.Buffer
	code := run(ctx, []string{"uploader", "modem", "at", "--db", db, "--device", sim.Path(), "AT+CSQ"}, strings.NewReader(""), &out, &errb)
	if code != 1 || !strings.Contains(errb.String(), "interrupted send") || !strings.Contains(errb.String(), "deadline exceeded") {
		t.Errorf("modem at with an interrupted send pending: exit %d, want 1 naming the interrupted send\nstdout:\n%s\nstderr:\n%s", code, out.String(), errb.String())
	}
	if strings.Contains(out.String(), "+CSQ") {
		t.Errorf("modem at answered although it must not talk to the module:\n%s", out.String())
	}
	if n := sim.Accounting().ATCommands; n != 0 {
		t.Errorf("the module heard %d AT command(s) while it may be waiting for the rest of a PUBLISH", n)
	}
	if after, err := os.ReadFile(mark); err != nil || !bytes.Equal(after, before) {
		t.Errorf("mid-packet mark changed: %q, %v; want %q", after, err, before)
	}
}
