package modem_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/nbiot-uploader/uploader/uplink/fault"
	"github.com/nbiot-uploader/uploader/uplink/modem"
	"github.com/nbiot-uploader/uploader/uplink/modemsim"
	"github.com/nbiot-uploader/uploader/uplink/modemsim/simtest"
	"github.com/nbiot-uploader/uploader/uplink/testkit"
)

// serveEach runs serve on every connection ln accepts, each in its own
// goroutine, and closes ln and waits for them when the test ends.
func serveEach(tb testing.TB, ln net.Listener, serve func(net.Conn)) {
	var wg sync.WaitGroup
	tb.Cleanup(func() {
		ln.Close()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				serve(c)
			}()
		}
	}()
}

// echoListener serves a loopback TCP echo until the test ends.
func echoListener(t testing.TB) (host string, port int) {
	t.Helper()
	ln := testkit.Listen(t)
	serveEach(t, ln, func(c net.Conn) {
		_, _ = io.Copy(c, c)
	})
	addr := ln.Addr().(*net.TCPAddr)
	return addr.IP.String(), addr.Port
}

// startSim runs the simulator on a pseudo-terminal and opens it through
// go.bug.st/serial, as on a board.
func startSim(t testing.TB, cfg modemsim.Config, opts modem.Options) (*modemsim.Sim, *modem.Modem) {
	t.Helper()
	sim := simtest.Start(t, cfg)
	port, err := modem.OpenSerial(sim.Path(), 115200)
	if err != nil {
		t.Fatalf("OpenSerial: %v", err)
	}
	m := modem.New(port, opts)
	t.Cleanup(func() {
		if err := m.Close(); err != nil {
			t.Errorf("Modem.Close: %v", err)
		}
	})
	return sim, m
}

// bringUp runs the window's bring-up up to a connected socket.
func bringUp(t testing.TB, ctx context.Context, m *modem.Modem, host string, port int) *modem.Conn {
	t.Helper()
	if err := m.Sync(ctx); err != nil {
		t.Fatalf("Sync: %v", err)
	}
	if status, err := m.SIMStatus(ctx); err != nil {
		t.Fatalf("SIMStatus = %q, %v", status, err)
	}
	if err := m.SetFunctionality(ctx, 1); err != nil {
		t.Fatalf("CFUN=1: %v", err)
	}
	if _, _, err := m.SignalQuality(ctx); err != nil {
		t.Fatalf("SignalQuality: %v", err)
	}
	if _, err := m.WaitRegistered(ctx, 10*time.Second); err != nil {
		t.Fatalf("WaitRegistered: %v", err)
	}
	if _, err := m.StartBearer(ctx, "nbiot", "user", "secret"); err != nil {
		t.Fatalf("StartBearer: %v", err)
	}
	c, err := m.Dial(ctx, host, port)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	return c
}

func binaryPayload(n int) []byte {
	seed := []byte("\x1a\x1b\r\nOK\r\n> \x00\xffERROR\r\n+CIPRXGET: 1\r\nCLOSED\r\n")
	b := make([]byte, n)
	for i := range b {
		b[i] = seed[i%len(seed)] ^ byte(i/len(seed))
	}
	return b
}

// Ensure a whole window works through a real pseudo-terminal against the
// simulator, with binary data larger than several chunks both ways, under
// every answer variant the reference lists.
func TestSimulatorEchoWindow(t *testing.T) {
	variants := []struct {
		name string
		v    modemsim.Variants
	}{
		{"reference", modemsim.Variants{}},
		{"all variants, urc every arrival", modemsim.Variants{URCInsideAnswers: true, CIFSRWithOK: true,
			CIPSTATUSOKLast: true, DataAcceptSpace: true, AlreadyConnectError: true, ConnectFailState: true,
			RxURC: modemsim.RxURCEvery}},
		{"no rx notification", modemsim.Variants{RxURC: modemsim.RxURCNever}},
	}
	for _, tt := range variants {
		t.Run(tt.name, func(t *testing.T) {
			host, port := echoListener(t)
			cfg := modemsim.Fast()
			cfg.Variants = tt.v
			sim, m := startSim(t, cfg, modem.Options{QuickSend: true, PollInterval: 50 * time.Millisecond})
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			c := bringUp(t, ctx, m, host, port)

			payload := binaryPayload(6000)
			if err := c.SetDeadline(time.Now().Add(20 * time.Second)); err != nil {
				t.Error(err)
			}
			errc := make(chan error, 1)
			go func() {
				_, err := c.Write(payload)
				errc <- err
			}()
			got := make([]byte, len(payload))
			if _, err := io.ReadFull(c, got); err != nil {
				t.Fatalf("ReadFull: %v", err)
			}
			if err := <-errc; err != nil {
				t.Fatalf("Write: %v", err)
			}
			if !bytes.Equal(got, payload) {
				t.Fatal("echo differs from what was written")
			}
			sent, acked, unacked, err := c.Acked(ctx)
			if err != nil || sent != int64(len(payload)) {
				t.Errorf("Acked = %d, %d, %d, %v", sent, acked, unacked, err)
			}
			if err := c.Close(); err != nil {
				t.Errorf("Conn.Close: %v", err)
			}
			if err := m.SetFunctionality(ctx, 0); err != nil {
				t.Errorf("CFUN=0: %v", err)
			}
			acc := sim.Accounting()
			if !bytes.Equal(acc.MQTTStream, payload) {
				t.Errorf("simulator forwarded %d bytes, want the %d written", len(acc.MQTTStream), len(payload))
			}
			if acc.LargestChunk > c.MaxChunk() || acc.CIPSENDCalls != (len(payload)+c.MaxChunk()-1)/c.MaxChunk() {
				t.Errorf("chunks: %d calls, largest %d, MaxChunk %d", acc.CIPSENDCalls, acc.LargestChunk, c.MaxChunk())
			}
			if sim.RadioOn() {
				t.Error("radio still on after CFUN=0")
			}
		})
	}
}

// Ensure the injected failures reach the caller as the errors the
// orchestrator tells apart, and that line noise is survived.
func TestSimulatorFaults(t *testing.T) {
	tests := []struct {
		name   string
		faults modemsim.Faults
		want   error // nil: the echo must succeed
	}{
		{"remote close", modemsim.Faults{RemoteCloseAfterBytes: 2000}, modem.ErrRemoteClosed},
		{"pdp deact", modemsim.Faults{PDPDeactAfterBytes: 2000}, modem.ErrPDPDeact},
		{"cipsend error", modemsim.Faults{ErrorOn: "CIPSEND", ErrorOnNth: 3}, modem.ErrCommand},
		{"reboot", modemsim.Faults{RebootAfterCommands: 3}, modem.ErrRebooted},
		{"hang", modemsim.Faults{HangAfterCommands: 1}, modem.ErrTimeout},
		{"line noise", modemsim.Faults{GarbageEvery: 2}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			host, port := echoListener(t)
			sim, m := startSim(t, modemsim.Fast(), modem.Options{QuickSend: true, PollInterval: 50 * time.Millisecond})
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			c := bringUp(t, ctx, m, host, port)
			if err := sim.SetFaults(tt.faults); err != nil {
				t.Fatal(err)
			}
			if err := c.SetDeadline(time.Now().Add(time.Second)); err != nil {
				t.Error(err)
			}
			payload := binaryPayload(5000)
			_, err := c.Write(payload)
			if err == nil {
				got := make([]byte, len(payload))
				_, err = io.ReadFull(c, got)
				if err == nil && !bytes.Equal(got, payload) {
					t.Fatal("echo differs")
				}
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			var se *fault.StepError
			if err != nil && !errors.As(err, &se) {
				t.Errorf("err = %v is not a *fault.StepError", err)
			}
		})
	}
}

func TestSimulatorConnectFail(t *testing.T) {
	cfg := modemsim.Fast()
	cfg.Faults.ConnectFail = true
	cfg.Variants.ConnectFailState = true
	_, m := startSim(t, cfg, modem.Options{})
	ctx := t.Context()
	if err := m.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	// No APN: the module's stored one (exec form AT+CSTT).
	if _, err := m.StartBearer(ctx, "", "", ""); err != nil {
		t.Fatal(err)
	}
	_, err := m.Dial(ctx, "127.0.0.1", 1)
	if !errors.Is(err, modem.ErrConnectFail) {
		t.Fatalf("err = %v, want ErrConnectFail", err)
	}
	if _, err := m.Exec(ctx, "AT+CIPSTATUS", 0); err != nil {
		t.Errorf("CIPSTATUS after CONNECT FAIL: %v", err)
	}
}

// Ensure Sync finds a module that is still booting (silent, then its boot
// banner with echo on) and the bring-up works right after it.
func TestSimulatorBootFromPowerOff(t *testing.T) {
	host, port := echoListener(t)
	cfg := modemsim.Fast()
	cfg.StartPoweredOff = true
	cfg.BootDelay = 400 * time.Millisecond
	sim, m := startSim(t, cfg, modem.Options{QuickSend: true})
	sim.PowerOn()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	c := bringUp(t, ctx, m, host, port)
	if err := c.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if err := m.PowerDown(ctx); err != nil {
		t.Errorf("PowerDown: %v", err)
	}
	if !testkit.WaitUntil(10*time.Second, func() bool { return !sim.PoweredOn() }) {
		t.Error("module still powered after AT+CPOWD=1")
	}
}

// Ensure the driver copes with the NB-IoT timing model (delayed
// registration, CONNECT OK after a round trip, paced UART), run on the
// simulator's virtual clock so it takes milliseconds.
func TestSimulatorNBIoTVirtual(t *testing.T) {
	host, port := echoListener(t)
	cfg := modemsim.NBIoT()
	cfg.VirtualClock = true
	sim, m := startSim(t, cfg, modem.Options{QuickSend: true})
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	c := bringUp(t, ctx, m, host, port)
	payload := binaryPayload(3000)
	if err := c.SetDeadline(time.Now().Add(30 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write(payload); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(payload))
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, payload) {
		t.Fatal("echo differs from what was written")
	}
	if err := c.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if acc := sim.Accounting(); acc.ElapsedSeconds < 5 {
		t.Errorf("modelled window of %.1fs: the NB-IoT delays did not apply", acc.ElapsedSeconds)
	}
}

// Ensure an interrupted command's late answer on a slow module is not
// taken as the radio-off's confirmation, and that a second process opening
// the port right after gets the answers to its own commands.
func TestSimulatorSlowInterruptedCommand(t *testing.T) {
	cfg := modemsim.Fast()
	cfg.Faults.SlowAnswers = 100 * time.Millisecond
	sim, m := startSim(t, cfg, modem.Options{})
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	if err := m.Sync(ctx); err != nil {
		t.Fatalf("Sync: %v", err)
	}
	if err := m.SetFunctionality(ctx, 1); err != nil {
		t.Fatalf("CFUN=1: %v", err)
	}
	interrupted, interrupt := context.WithCancel(ctx)
	time.AfterFunc(20*time.Millisecond, interrupt)
	if _, _, err := m.SignalQuality(interrupted); !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted AT+CSQ: %v", err)
	}
	if err := m.SetFunctionality(ctx, 0); err != nil {
		t.Fatalf("CFUN=0: %v", err)
	}
	if sim.RadioOn() {
		t.Error("AT+CFUN=0 returned before the module switched the radio off")
	}
	// Interrupted again, and the process ends without waiting.
	interrupted, interrupt = context.WithCancel(ctx)
	time.AfterFunc(20*time.Millisecond, interrupt)
	if _, _, err := m.SignalQuality(interrupted); !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted AT+CSQ: %v", err)
	}
	if err := m.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	port, err := modem.OpenSerial(sim.Path(), 115200)
	if err != nil {
		t.Fatalf("OpenSerial again: %v", err)
	}
	next := modem.New(port, modem.Options{})
	defer next.Close()
	if err := next.Sync(ctx); err != nil {
		t.Fatalf("second Sync: %v", err)
	}
	resp, err := next.Exec(ctx, "AT+CFUN?", 3*time.Second)
	if err != nil || len(resp.Lines) != 1 || resp.Lines[0] != "+CFUN: 0" || resp.Final != "OK" {
		t.Errorf("AT+CFUN? in the next process = %+v, %v; want +CFUN: 0 and OK", resp, err)
	}
}

// Ensure the teardown of a hung module leaves the radio-off command most
// of a shared budget: CloseContext gives up after a short probe, and
// AT+CFUN=0 returns when the budget ends.
func TestSimulatorHungTeardown(t *testing.T) {
	if testing.Short() {
		t.Skip("spends a 4 s teardown budget")
	}
	host, port := echoListener(t)
	sim, m := startSim(t, modemsim.Fast(), modem.Options{QuickSend: true, PollInterval: 50 * time.Millisecond})
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	c := bringUp(t, ctx, m, host, port)
	if err := sim.SetFaults(modemsim.Faults{HangAfterCommands: 1}); err != nil {
		t.Fatal(err)
	}
	if err := c.SetDeadline(time.Now().Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write(binaryPayload(5000)); !errors.Is(err, modem.ErrTimeout) {
		t.Fatalf("Write to a hung module: %v, want ErrTimeout", err)
	}

	const budget = 4 * time.Second
	teardown, cancelTeardown := context.WithTimeout(t.Context(), budget)
	defer cancelTeardown()
	start := time.Now()
	if err := c.CloseContext(teardown); !errors.Is(err, modem.ErrTimeout) {
		t.Errorf("CloseContext = %v, want ErrTimeout", err)
	}
	closed := time.Since(start)
	// The late answer's grace (1 s) and the CIPCLOSE probe (1 s) at most,
	// not the whole budget: some of it must be left for CFUN=0.
	if teardown.Err() != nil {
		t.Errorf("CloseContext took %v, all of a %v budget, on a hung module", closed, budget)
	}
	if err := m.SetFunctionality(teardown, 0); !errors.Is(err, modem.ErrTimeout) {
		t.Errorf("CFUN=0 on a hung module: %v, want ErrTimeout", err)
	}
	if d := time.Since(start); d > budget+5*time.Second {
		t.Errorf("teardown took %v with a %v budget", d, budget)
	}
	t.Logf("CloseContext %v, teardown %v", closed.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
}

// Ensure a Conn told what replies are due (AwaitReplies) reads them under
// every "+CIPRXGET: 1" policy of the simulator, with single
// AT+CIPRXGET=2 reads and no AT+CIPRXGET=4 queries, and drains what the
// module reports left.
func TestSimulatorAwaitReplies(t *testing.T) {
	for _, policy := range modemsim.RxURCPolicies() {
		t.Run(policy.String(), func(t *testing.T) {
			host, port := echoListener(t)
			cfg := modemsim.Fast()
			cfg.Variants.RxURC = policy
			cfg.Variants.RxURCRepeatEvery = 20 * time.Millisecond
			sim, m := startSim(t, cfg, modem.Options{QuickSend: true, PollInterval: 50 * time.Millisecond})
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			c := bringUp(t, ctx, m, host, port)
			if err := c.SetDeadline(time.Now().Add(20 * time.Second)); err != nil {
				t.Fatal(err)
			}
			before := sim.Accounting()

			payload := binaryPayload(5000)
			c.AwaitReplies(1, false)
			if _, err := c.Write(payload); err != nil {
				t.Fatalf("Write: %v", err)
			}
			c.AwaitReplies(1, true)
			got := make([]byte, len(payload))
			if _, err := io.ReadFull(c, got); err != nil {
				t.Fatalf("ReadFull: %v", err)
			}
			c.AwaitReplies(0, false)
			if !bytes.Equal(got, payload) {
				t.Fatal("echo differs from what was written")
			}
			acc := sim.Accounting()
			if polls := acc.RxPolls - before.RxPolls; polls != 0 {
				t.Errorf("%d AT+CIPRXGET=4 queries; a paced Conn reads with =2 alone", polls)
			}
			if reads := acc.RxReads - acc.RxEmptyReads - before.RxReads + before.RxEmptyReads; reads < (len(payload)+1459)/1460 {
				t.Errorf("%d reads with data for %d bytes", reads, len(payload))
			}
			if err := c.Close(); err != nil {
				t.Errorf("Conn.Close: %v", err)
			}
		})
	}
}

// Ensure that before any reply has measured the round trip, a Conn whose
// user is blocked on a reply paces its reads by the TCP handshake's time
// (AT+CIPSTART to CONNECT OK), not by PollInterval: with a module that never
// announces data and a PollInterval of an hour, the echo must still come
// back well within the read deadline.
func TestSimulatorFirstReplyPacedByConnectTime(t *testing.T) {
	host, port := echoListener(t)
	cfg := modemsim.Fast()
	cfg.Variants.RxURC = modemsim.RxURCNever
	// A round trip, so the first read after the write finds nothing yet.
	cfg.RoundTrip = 300 * time.Millisecond
	sim, c := hourPollConn(t, cfg, host, port)
	payload := []byte("CONNECT and the first records")
	c.AwaitReplies(1, false)
	if _, err := c.Write(payload); err != nil {
		t.Fatalf("Write: %v", err)
	}
	c.AwaitReplies(1, true)
	got := make([]byte, len(payload))
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatalf("ReadFull with an hour's PollInterval and no URC: %v", err)
	}
	if !bytes.Equal(got, payload) {
		t.Fatal("echo differs from what was written")
	}
	if urcs := sim.Accounting().RxURCs; urcs != 0 {
		t.Errorf("%d receive URCs from a module set never to send them", urcs)
	}
	if err := c.Close(); err != nil {
		t.Errorf("Conn.Close: %v", err)
	}
}

// A session hints what it awaits before its reader's first Read; the
// connection then sends no AT+CIPRXGET before the first send: nothing can
// have arrived yet, and the exchange would only delay the CONNECT.
func TestSimulatorNoReadBeforeFirstSend(t *testing.T) {
	host, port := echoListener(t)
	cfg := modemsim.Fast()
	cfg.RoundTrip = 300 * time.Millisecond
	sim, c := hourPollConn(t, cfg, host, port)
	c.AwaitReplies(1, false) // the CONNACK
	payload := []byte("CONNECT and the first records")
	got := make(chan error, 1)
	go func() {
		buf := make([]byte, len(payload))
		_, err := io.ReadFull(c, buf)
		got <- err
	}()
	// Time for the reader to poll, had it wanted to (it is not what is
	// measured: the round trip puts its first read 450 ms out).
	time.Sleep(100 * time.Millisecond)
	if _, err := c.Write(payload); err != nil {
		t.Fatalf("Write: %v", err)
	}
	if acc := sim.Accounting(); acc.RxPolls+acc.RxReads != 0 {
		t.Errorf("%d AT+CIPRXGET=4 and %d =2 before the first send", acc.RxPolls, acc.RxReads)
	}
	c.AwaitReplies(1, true)
	if err := <-got; err != nil {
		t.Fatalf("ReadFull: %v", err)
	}
	if err := c.Close(); err != nil {
		t.Errorf("Conn.Close: %v", err)
	}
}

// hourPollConn is a connection through a simulator of cfg to host:port
// whose PollInterval is an hour, so only the receive pacing makes it read;
// its deadline is 20 s away.
func hourPollConn(t *testing.T, cfg modemsim.Config, host string, port int) (*modemsim.Sim, *modem.Conn) {
	t.Helper()
	sim, m := startSim(t, cfg, modem.Options{QuickSend: true, PollInterval: time.Hour})
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	c := bringUp(t, ctx, m, host, port)
	if err := c.SetDeadline(time.Now().Add(20 * time.Second)); err != nil {
		t.Fatal(err)
	}
	return sim, c
}
