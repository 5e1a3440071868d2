package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/nbiot-uploader/uploader/uplink/modemsim/simtest"
	"github.com/nbiot-uploader/uploader/uplink/testkit"
)

// openPTY gives a terminal pair, so flush sees a terminal on stderr.
func openPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	fd, err := unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatalf("open a pseudo-terminal: %v", err)
	}
	master = os.NewFile(uintptr(fd), "/dev/ptmx")
	if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(fd, unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	slave, err = os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { slave.Close(); master.Close() })
	return master, slave
}

func TestFlushProgressOnTerminal(t *testing.T) {
	broker := startBroker(t)
	sim := simtest.StartFaults(t, "")
	db := tempDB(t)
	var lines strings.Builder
	for i := 0; i < 400; i++ {
		fmt.Fprintf(&lines, "reading %d\n", i)
	}
	if code, _, e := runApp(t, lines.String(), "enqueue", "--db", db, "--topic", "s/1", "--lines"); code != 0 {
		t.Fatal(e)
	}
	master, slave := openPTY(t)
	var screen testkit.SyncBuffer
	go func() { _, _ = io.Copy(&screen, master) }() // ends when the cleanup closes master
	var out bytes.Buffer
	code := run(context.Background(), []string{"uploader", "flush", "--db", db, "--device", sim.Path(), "--broker", broker.Addr(),
		"--username", "u", "--password", "pw", "--apn", "iot", "--log-level", "warn"}, strings.NewReader(""), &out, slave)
	if code != 0 {
		t.Fatalf("flush exit %d: %s", code, out.String())
	}
	// The terminal hands flush's output to the reader above a moment
	// after flush wrote it.
	progress := func(s string) bool {
		return strings.Contains(s, "\r") && strings.Contains(s, "of 400 records acknowledged") && strings.Contains(s, "bytes/s")
	}
	if !screen.WaitUntil(10*time.Second, progress) {
		t.Errorf("no live progress line on the terminal: %q", screen.String())
	}
	// Not a terminal: plain log lines, no carriage returns.
	var errb bytes.Buffer
	code = run(context.Background(), []string{"uploader", "flush", "--db", db, "--device", sim.Path(), "--broker", broker.Addr(),
		"--username", "u", "--password", "pw", "--apn", "iot"}, strings.NewReader(""), io.Discard, &errb)
	if code != 0 || strings.Contains(errb.String(), "\r") {
		t.Errorf("exit %d; log on a pipe has carriage returns: %q", code, errb.String())
	}
}
