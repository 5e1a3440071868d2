package uplink_test

import (
	"context"
	"errors"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nbiot-uploader/uploader/uplink"
	"github.com/nbiot-uploader/uploader/uplink/brokertest"
	"github.com/nbiot-uploader/uploader/uplink/fault"
	"github.com/nbiot-uploader/uploader/uplink/modemsim"
	"github.com/nbiot-uploader/uploader/uplink/modemsim/simtest"
)

// Two windows on one queue never run at once, whatever the transport: the
// second fails at once naming the holder, sends nothing, and leaves the
// running window's record alone.
func TestSecondWindowOnTheSameQueueRefused(t *testing.T) {
	// A broker that accepts the connection and never answers CONNECT keeps
	// the first window in its session until it is cancelled.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 4)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	q, dir := openQueue(t)
	enqueueReadings(t, q, 30, 1)
	cfg := uplink.Defaults()
	cfg.Transport = uplink.TransportTCP
	cfg.Broker = ln.Addr().String()
	cfg.ClientID = "site-7"
	cfg.ReplyTimeout = time.Minute
	cfg.LockPath = dir + "/modem.lock"
	cfg.Holder = "uploader run"

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	first := make(chan error, 1)
	go func() {
		_, err := uplink.RunWindow(ctx, cfg, q)
		first <- err
	}()
	var conn net.Conn
	select {
	case conn = <-accepted:
		defer conn.Close()
	case <-time.After(30 * time.Second):
		t.Fatal("the first window never connected")
	}

	second := cfg
	second.Holder = "uploader flush"
	sum, err := uplink.RunWindow(context.Background(), second, q)
	var busy *uplink.BusyError
	if !errors.Is(err, uplink.ErrWindowBusy) || !errors.As(err, &busy) {
		t.Fatalf("second window: %v, want window busy", err)
	}
	if want := "pid " + strconv.Itoa(os.Getpid()) + " (uploader run)"; !strings.Contains(busy.Holder, want) {
		t.Errorf("holder %q does not name %q", busy.Holder, want)
	}
	if sum.Step != uplink.StepWindowLock || sum.Sent != 0 {
		t.Errorf("second window summary: %+v", sum)
	}
	select {
	case c := <-accepted:
		c.Close()
		t.Error("the second window connected to the broker")
	default:
	}
	cancel()
	if err := <-first; err == nil {
		t.Error("the cancelled first window reported success")
	}
	if skips, err := uplink.ReadWindowSkips(q); err != nil || skips.Busy != 1 {
		t.Errorf("skips = %+v, %v; want the refused window counted", skips, err)
	}
	raw, err := q.WindowSummary()
	if err != nil {
		t.Fatal(err)
	}
	if s, err := uplink.ParseSummary(raw); err != nil || s == nil || s.Step == uplink.StepWindowLock {
		t.Errorf("stored summary is the refused window's: %+v, %v", s, err)
	}
	if depth(t, q) != 30 {
		t.Errorf("depth %d, want every record still queued", depth(t, q))
	}
}

// With nothing queued the window does not bring the radio up (the
// simulator hears no AT command) unless asked to connect anyway.
func TestEmptyWindowSkipsTheRadio(t *testing.T) {
	broker := startBroker(t, brokertest.Options{Username: testUser, Password: testPassword})
	cfg0 := modemsim.Fast()
	cfg0.StartRadioOff = true
	sim := simtest.Start(t, cfg0)
	q, dir := openQueue(t)
	cfg := modemConfig(sim, broker.Addr(), dir)
	sum, err := uplink.RunWindow(context.Background(), cfg, q)
	if err != nil || sum.Outcome != uplink.OutcomeSkipped || !strings.Contains(sum.String(), "nothing queued") {
		t.Fatalf("empty window: %v, %v", sum, err)
	}
	if n := sim.Accounting().ATCommands; n != 0 {
		t.Errorf("an empty window sent %d AT commands", n)
	}
	if raw, _ := q.WindowSummary(); raw != nil {
		t.Errorf("a skipped window stored itself as the last window: %s", raw)
	}
	if skips, err := uplink.ReadWindowSkips(q); err != nil || skips.Empty != 1 {
		t.Errorf("skips = %+v, %v", skips, err)
	}

	cfg.EmptyWindow = uplink.EmptyConnect
	sum, err = uplink.RunWindow(context.Background(), cfg, q)
	if err != nil || sum.Outcome != uplink.OutcomeOK || sim.Accounting().ATCommands == 0 {
		t.Fatalf("empty window with EmptyConnect: %v, %v", sum, err)
	}
	if sim.RadioOn() {
		t.Error("radio left on")
	}
}

// The daemon's start-up switches off a module that booted with its radio
// on; with a power switch it cuts the supply without a word to the module.
func TestSwitchRadioOffAtStartUp(t *testing.T) {
	t.Run("AT+CFUN=0", func(t *testing.T) {
		sim := simtest.Start(t, modemsim.Fast()) // boots with CFUN=1
		_, dir := openQueue(t)
		cfg := modemConfig(sim, "127.0.0.1:1", dir)
		if !sim.RadioOn() {
			t.Fatal("the simulator did not boot with its radio on")
		}
		td, err := uplink.SwitchRadioOff(context.Background(), cfg, "uploader run start-up")
		if err != nil || td.Err != nil || !td.Plan.RadioOff {
			t.Fatalf("SwitchRadioOff: %+v, %v", td, err)
		}
		if sim.RadioOn() {
			t.Error("radio still on")
		}
	})
	t.Run("power switch", func(t *testing.T) {
		sim := simtest.Start(t, modemsim.Fast())
		_, dir := openQueue(t)
		cfg := modemConfig(sim, "127.0.0.1:1", dir)
		on, off, flips := fakeGPIO(t, sim)
		cfg.Power = uplink.PowerCommands{On: on, Off: off}
		td, err := uplink.SwitchRadioOff(context.Background(), cfg, "uploader run start-up")
		if err != nil || td.Err != nil || td.Plan != (uplink.TeardownPlan{CutPower: true}) {
			t.Fatalf("SwitchRadioOff: %+v, %v", td, err)
		}
		if got := flips(); len(got) != 1 || got[0] != "0" {
			t.Errorf("power switch flips %v, want one cut", got)
		}
		if sim.Accounting().ATCommands != 0 {
			t.Error("the module was spoken to before its power was cut")
		}
		if sim.PoweredOn() {
			t.Error("module still powered")
		}
	})
}

// Every holder of the modem — a window, `modem check`, `modem at` — deals
// with a dead window's interrupted send the same way: with a power switch
// it power-cycles the module instead of waiting out the broker's
// keep-alive; without one it waits.
func TestWithModemHonoursAnInterruptedSend(t *testing.T) {
	t.Run("power switch cycles", func(t *testing.T) {
		sim := simtest.Start(t, modemsim.Fast())
		_, dir := openQueue(t)
		cfg := modemConfig(sim, "127.0.0.1:1", dir)
		on, off, flips := fakeGPIO(t, sim)
		cfg.Power = uplink.PowerCommands{On: on, Off: off}
		if err := uplink.MarkMidPacket(cfg.LockPath, time.Hour); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		td, err := uplink.WithModem(ctx, cfg, uplink.HoldOptions{What: "uploader modem check"}, func(ctx context.Context, m *uplink.Modem) error {
			_, err := m.Exec(ctx, "AT+CSQ", time.Second)
			return err
		})
		if err != nil || td.Err != nil {
			t.Fatalf("WithModem: %v (teardown %+v)", err, td)
		}
		if got := flips(); len(got) < 3 || got[0] != "0" || got[1] != "1" {
			t.Errorf("power switch flips %v, want a cycle (0, 1) first", got)
		}
		checkNoMark(t, cfg.LockPath)
	})
	t.Run("no switch waits", func(t *testing.T) {
		sim := simtest.Start(t, modemsim.Fast())
		_, dir := openQueue(t)
		cfg := modemConfig(sim, "127.0.0.1:1", dir)
		if err := uplink.MarkMidPacket(cfg.LockPath, time.Hour); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		_, err := uplink.WithModem(ctx, cfg, uplink.HoldOptions{What: "uploader modem at", KeepRadio: true}, func(context.Context, *uplink.Modem) error {
			t.Error("ran while the broker may still hold part of a PUBLISH")
			return nil
		})
		if fault.StepOf(err) != uplink.StepInterrupted || !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("err = %v, want the interrupted-send wait cut by the deadline", err)
		}
		if sim.Accounting().ATCommands != 0 {
			t.Error("the module heard AT commands while it may be waiting for payload")
		}
	})
}
