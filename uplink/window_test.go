package uplink_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nbiot-uploader/uploader/codec"
	"github.com/nbiot-uploader/uploader/queue"
	"github.com/nbiot-uploader/uploader/uplink"
	"github.com/nbiot-uploader/uploader/uplink/brokertest"
	"github.com/nbiot-uploader/uploader/uplink/fault"
	"github.com/nbiot-uploader/uploader/uplink/modemsim"
	"github.com/nbiot-uploader/uploader/uplink/modemsim/simtest"
	"github.com/nbiot-uploader/uploader/uplink/session"
	"github.com/nbiot-uploader/uploader/uplink/testkit"
	"golang.org/x/sys/unix"
)

const (
	testUser     = "site-7"
	testPassword = "s3cret-pw"
)

func startBroker(t *testing.T, opts brokertest.Options) *brokertest.Broker {
	t.Helper()
	b, err := brokertest.Start(opts)
	if err != nil {
		t.Fatalf("start broker: %v", err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func openQueue(t *testing.T) (*queue.Queue, string) {
	t.Helper()
	dir := t.TempDir()
	q, err := queue.Open(filepath.Join(dir, "queue.db"), nil)
	if err != nil {
		t.Fatalf("open queue: %v", err)
	}
	t.Cleanup(func() { q.Close() })
	return q, dir
}

// enqueueReadings stores n readings with unique payloads over 3 topics.
func enqueueReadings(t *testing.T, q *queue.Queue, n int, qos byte) []string {
	t.Helper()
	var recs []queue.Record
	var payloads []string
	for i := 0; i < n; i++ {
		p := fmt.Sprintf(`{"id":%d,"v":%d.5}`, i, 20+i%7)
		payloads = append(payloads, p)
		recs = append(recs, queue.Record{Topic: fmt.Sprintf("sites/s7/sensor/%d", i%3), Payload: []byte(p), QoS: qos})
	}
	if _, err := q.Enqueue(recs...); err != nil {
		t.Fatalf("enqueue: %v", err)
	}
	return payloads
}

func depth(t *testing.T, q *queue.Queue) int64 {
	t.Helper()
	st, err := q.Stats()
	if err != nil {
		t.Fatalf("stats: %v", err)
	}
	return st.Depth
}

func modemConfig(sim *modemsim.Sim, broker string, dir string) uplink.Config {
	cfg := uplink.Defaults()
	cfg.Transport = uplink.TransportModem
	cfg.Device = sim.Path()
	cfg.APN = "iot.test"
	cfg.Broker = broker
	cfg.ClientID = "site-7"
	cfg.Username = testUser
	cfg.Password = []byte(testPassword)
	cfg.RegistrationTimeout = 5 * time.Second
	cfg.ReplyTimeout = 5 * time.Second
	cfg.WindowTimeout = 30 * time.Second
	cfg.ModemLockTimeout = time.Second
	cfg.LockPath = filepath.Join(dir, "modem.lock")
	return cfg
}

// decodeStream checks the bytes the module forwarded to the broker: one
// CONNECT first, then well-formed PUBLISHes with unique in-flight ids.
func decodeStream(t *testing.T, v codec.Version, stream []byte) (connects, publishes int) {
	t.Helper()
	d := codec.NewDecoder(bytes.NewReader(stream), v, 1<<20)
	for {
		p, err := d.Next()
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			t.Fatalf("MQTT stream sent to the broker does not decode after %d publishes: %v", publishes, err)
		}
		switch p.Type {
		case codec.TypeConnect:
			connects++
			if publishes > 0 {
				t.Errorf("CONNECT after %d PUBLISHes", publishes)
			}
		case codec.TypePublish:
			publishes++
		}
	}
}

func TestWindowDeliversEverything(t *testing.T) {
	for _, v := range []codec.Version{codec.V31, codec.V311, codec.V5} {
		for _, qos := range []byte{0, 1, 2} {
			t.Run(fmt.Sprintf("mqtt%s/qos%d", v, qos), func(t *testing.T) {
				broker := startBroker(t, brokertest.Options{Username: testUser, Password: testPassword})
				sim := simtest.Start(t, modemsim.Fast())
				q, dir := openQueue(t)
				const n = 120
				payloads := enqueueReadings(t, q, n, qos)
				cfg := modemConfig(sim, broker.Addr(), dir)
				cfg.MQTTVersion = v
				sum, err := uplink.RunWindow(context.Background(), cfg, q)
				if err != nil {
					t.Fatalf("window: %v", err)
				}
				if !sum.OK() || sum.Acked != n || sum.Queued != n {
					t.Errorf("summary = %+v", sum)
				}
				if d := depth(t, q); d != 0 {
					t.Errorf("%d records left queued", d)
				}
				if !broker.WaitCount(n, 5*time.Second) {
					t.Fatalf("broker routed %d of %d", broker.Count(), n)
				}
				for i, m := range broker.Messages()[:n] {
					if string(m.Payload) != payloads[i] {
						t.Fatalf("message %d = %q, want %q (order or content broken)", i, m.Payload, payloads[i])
					}
				}
				if sim.RadioOn() {
					t.Error("radio still on after the window")
				}
				acc := sim.Accounting()
				if acc.TCPConnections != 1 {
					t.Errorf("%d TCP connections, want 1", acc.TCPConnections)
				}
				c, p := decodeStream(t, v, acc.MQTTStream)
				if c != 1 || p < n {
					t.Errorf("stream: %d CONNECT, %d PUBLISH; want 1 and >= %d", c, p, n)
				}
				if acc.LargestChunk > 1460 || sum.Chunks == 0 {
					t.Errorf("largest chunk %d, chunks %d", acc.LargestChunk, sum.Chunks)
				}
				raw, err := q.WindowSummary()
				if err != nil {
					t.Fatal(err)
				}
				stored, err := uplink.ParseSummary(raw)
				if err != nil || stored == nil || stored.Acked != n {
					t.Errorf("stored summary %+v, %v", stored, err)
				}
			})
		}
	}
}

// Chunks are packed: with many small records, all but the last few
// CIPSENDs carry as many whole packets as fit under the module's limit, and
// every CIPSEND ends on a packet boundary, so a host that dies between two
// of them never leaves the broker holding half a PUBLISH.
func TestWindowPacksChunksOnPacketBoundaries(t *testing.T) {
	broker := startBroker(t, brokertest.Options{})
	sim := simtest.Start(t, modemsim.Fast())
	q, dir := openQueue(t)
	enqueueReadings(t, q, 500, 1)
	cfg := modemConfig(sim, broker.Addr(), dir)
	sum, err := uplink.RunWindow(context.Background(), cfg, q)
	if err != nil {
		t.Fatal(err)
	}
	acc := sim.Accounting()
	largestPacket, off := 0, 0
	for i, n := range acc.ChunkSizes {
		d := codec.NewDecoder(bytes.NewReader(acc.MQTTStream[off:off+n]), cfg.MQTTVersion, 1<<20)
		for {
			p, err := d.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("CIPSEND %d of %d bytes does not hold whole packets: %v", i, n, err)
			}
			largestPacket = max(largestPacket, p.Size)
		}
		off += n
	}
	if off != len(acc.MQTTStream) {
		t.Fatalf("chunks add up to %d bytes, stream has %d", off, len(acc.MQTTStream))
	}
	if acc.LargestChunk > 1460 || acc.LargestChunk <= 1460-largestPacket {
		t.Errorf("largest chunk %d, want within %d bytes (the largest packet) of 1460", acc.LargestChunk, largestPacket)
	}
	minChunks := int(acc.MQTTBytesUp/int64(1460-largestPacket)) + 1
	if sum.Chunks > minChunks+3 {
		t.Errorf("%d chunks for %d bytes; packing needs about %d", sum.Chunks, acc.MQTTBytesUp, minChunks)
	}
}

func TestWindowTCPTransport(t *testing.T) {
	broker := startBroker(t, brokertest.Options{Username: testUser, Password: testPassword})
	q, dir := openQueue(t)
	enqueueReadings(t, q, 40, 1)
	cfg := uplink.Defaults()
	cfg.Transport = uplink.TransportTCP
	cfg.Broker = broker.Addr()
	cfg.ClientID = "site-7"
	cfg.Username, cfg.Password = testUser, []byte(testPassword)
	cfg.LockPath = filepath.Join(dir, "modem.lock")
	sum, err := uplink.RunWindow(context.Background(), cfg, q)
	if err != nil || sum.Acked != 40 {
		t.Fatalf("window: %+v, %v", sum, err)
	}
	if depth(t, q) != 0 {
		t.Error("records left")
	}
}

// With MQTT 5 every record carries its sequence number as the user
// property "seq" unless NoSeq is set, which saves its bytes.
func TestWindowSeqProperty(t *testing.T) {
	broker := startBroker(t, brokertest.Options{})
	bytesOut := map[bool]int64{}
	for _, noSeq := range []bool{false, true} {
		q, dir := openQueue(t)
		enqueueReadings(t, q, 20, 1)
		cfg := modemConfig(simtest.Start(t, modemsim.Fast()), broker.Addr(), dir)
		cfg.MQTTVersion = codec.V5
		cfg.NoSeq = noSeq
		cfg.ClientID = fmt.Sprintf("site-seq-%v", noSeq)
		before := len(broker.Messages())
		sum, err := uplink.RunWindow(context.Background(), cfg, q)
		if err != nil || sum.Acked != 20 {
			t.Fatalf("NoSeq %v: %+v, %v", noSeq, sum, err)
		}
		broker.WaitCount(before+20, 5*time.Second)
		for _, m := range broker.Messages()[before:] {
			if (m.Seq == "") != noSeq {
				t.Errorf("NoSeq %v: message on %s has seq %q", noSeq, m.Topic, m.Seq)
			}
		}
		bytesOut[noSeq] = sum.MQTTBytesOut
	}
	if saved := bytesOut[false] - bytesOut[true]; saved < 20*5 {
		t.Errorf("NoSeq saved %d MQTT bytes on 20 records (%d vs %d)", saved, bytesOut[true], bytesOut[false])
	}
}

func TestWindowTLS(t *testing.T) {
	ca := newTestCA(t)
	serverTLS := ca.serverConfig(t, "broker.test")
	broker := startBroker(t, brokertest.Options{TLS: serverTLS})
	for _, transport := range []uplink.Transport{uplink.TransportModem, uplink.TransportTCP} {
		t.Run(string(transport), func(t *testing.T) {
			q, dir := openQueue(t)
			enqueueReadings(t, q, 30, 1)
			var cfg uplink.Config
			var sim *modemsim.Sim
			if transport == uplink.TransportModem {
				sim = simtest.Start(t, modemsim.Fast())
				cfg = modemConfig(sim, broker.Addr(), dir)
			} else {
				cfg = uplink.Defaults()
				cfg.Transport = uplink.TransportTCP
				cfg.Broker = broker.Addr()
				cfg.ClientID = "site-7"
			}
			cfg.TLS = uplink.TLSConfig{Enabled: true, CAFile: ca.caFile, CertFile: ca.clientCert, KeyFile: ca.clientKey, ServerName: "broker.test"}
			sum, err := uplink.RunWindow(context.Background(), cfg, q)
			if err != nil || sum.Acked != 30 {
				t.Fatalf("window over TLS: %+v, %v", sum, err)
			}
			// The handshake's reads are paced like the session's
			// (single AT+CIPRXGET=2 reads), not idle polling.
			if sim != nil {
				if polls := sim.Accounting().RxPolls; polls != 0 {
					t.Errorf("%d AT+CIPRXGET=4 queries; a paced window reads with =2 alone", polls)
				}
			}
		})
	}
	// Each TLS record fits one CIPSEND: with records a little over the
	// module's limit every chunk would cost two, and two TCP segments.
	t.Run("records fit chunks", func(t *testing.T) {
		q, dir := openQueue(t)
		enqueueReadings(t, q, 600, 1)
		sim := simtest.Start(t, modemsim.Fast())
		cfg := modemConfig(sim, broker.Addr(), dir)
		cfg.TLS = uplink.TLSConfig{Enabled: true, CAFile: ca.caFile, CertFile: ca.clientCert, KeyFile: ca.clientKey, ServerName: "broker.test"}
		cfg.InFlight = 1000 // so acknowledgements never cut a chunk short
		sum, err := uplink.RunWindow(context.Background(), cfg, q)
		if err != nil || sum.Acked != 600 {
			t.Fatalf("window over TLS: %+v, %v", sum, err)
		}
		acc := sim.Accounting()
		// The handshake takes three CIPSENDs of its own; the rest carry
		// records of at least 1460 - 100 bytes, but for the last one or two.
		full := 0
		for _, n := range acc.ChunkSizes {
			if n >= 1360 {
				full++
			}
		}
		// A few more may be cut short where the in-flight window,
		// sized in bytes to the link, waits for acknowledgements.
		want := int(acc.MQTTBytesUp) / 1460
		if full < want-2 || len(acc.ChunkSizes) > want+7 {
			t.Errorf("%d CIPSENDs, %d of them nearly full, for %d bytes (%d full chunks' worth): %v",
				len(acc.ChunkSizes), full, acc.MQTTBytesUp, want, acc.ChunkSizes)
		}
	})
	t.Run("wrong CA", func(t *testing.T) {
		other := newTestCA(t)
		q, dir := openQueue(t)
		enqueueReadings(t, q, 5, 1)
		cfg := modemConfig(simtest.Start(t, modemsim.Fast()), broker.Addr(), dir)
		cfg.TLS = uplink.TLSConfig{Enabled: true, CAFile: other.caFile, ServerName: "broker.test"}
		_, err := uplink.RunWindow(context.Background(), cfg, q)
		var se *fault.StepError
		if !errors.As(err, &se) || se.Step != uplink.StepTLS {
			t.Fatalf("err = %v, want a tls handshake step error", err)
		}
		if depth(t, q) != 5 {
			t.Error("records lost")
		}
	})
}

// Every failure names its step, switches the radio off, keeps every
// unacknowledged record, and a following clean window delivers the rest.
func TestWindowFailures(t *testing.T) {
	tests := []struct {
		name   string
		faults modemsim.Faults
		tweak  func(*uplink.Config)
		steps  []string // acceptable failing steps
		ok     bool     // the window survives this fault
	}{
		{name: "connect fail", faults: modemsim.Faults{ConnectFail: true}, steps: []string{uplink.StepTCPConnect}},
		{name: "no registration", faults: modemsim.Faults{NoRegistration: true}, tweak: func(c *uplink.Config) { c.RegistrationTimeout = time.Second }, steps: []string{uplink.StepRegistration}},
		{name: "error on a data CIPSEND", faults: modemsim.Faults{ErrorOn: "CIPSEND", ErrorOnNth: 2}, steps: mqttSteps},
		{name: "remote close at connect", faults: modemsim.Faults{RemoteCloseAfterBytes: 600}, steps: mqttSteps},
		{name: "remote close mid-stream", faults: modemsim.Faults{RemoteCloseAfterBytes: 6000}, steps: mqttSteps},
		{name: "pdp deact mid-stream", faults: modemsim.Faults{PDPDeactAfterBytes: 6000}, steps: mqttSteps},
		{name: "data lost after SEND OK", faults: modemsim.Faults{LoseDataAfterBytes: 6000}, tweak: func(c *uplink.Config) { c.ReplyTimeout = time.Second }, steps: mqttSteps},
		{name: "module hangs", faults: modemsim.Faults{HangAfterCommands: 14}, tweak: func(c *uplink.Config) { c.WindowTimeout = 8 * time.Second }},
		{name: "module reboots", faults: modemsim.Faults{RebootAfterCommands: 20}},
		{name: "garbage between answers", faults: modemsim.Faults{GarbageEvery: 3}, ok: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			broker := startBroker(t, brokertest.Options{})
			cfgSim := modemsim.Fast()
			cfgSim.Faults = tt.faults
			sim := simtest.Start(t, cfgSim)
			q, dir := openQueue(t)
			const n = 200
			enqueueReadings(t, q, n, 1)
			cfg := modemConfig(sim, broker.Addr(), dir)
			if tt.tweak != nil {
				tt.tweak(&cfg)
			}
			start := time.Now()
			sum, err := uplink.RunWindow(context.Background(), cfg, q)
			took := time.Since(start)
			if took > cfg.WindowTimeout+20*time.Second {
				t.Errorf("window took %s, deadline %s", took, cfg.WindowTimeout)
			}
			if tt.ok {
				if err != nil {
					t.Fatalf("window failed: %v", err)
				}
			} else {
				if err == nil {
					t.Fatalf("window succeeded despite %s: %+v", tt.name, sum)
				}
				var se *fault.StepError
				if !errors.As(err, &se) {
					t.Fatalf("error %v names no step", err)
				}
				if len(tt.steps) > 0 && !contains(tt.steps, se.Step) {
					t.Errorf("failed at step %q (%v), want one of %v", se.Step, err, tt.steps)
				}
				if sum.Outcome != uplink.OutcomeFailed || sum.Step == "" || sum.Error == "" {
					t.Errorf("summary %+v", sum)
				}
				t.Logf("%s: %v (acked %d before the fault)", tt.name, err, sum.Acked)
			}
			if left := depth(t, q); left != int64(n-sum.Acked) {
				t.Errorf("%d left queued, want %d - %d acked", left, n, sum.Acked)
			}
			if sim.RadioOn() && !tt.ok && tt.faults.HangAfterCommands == 0 {
				t.Error("radio left on after the failed window")
			}
			// The next window, on a healthy module, delivers the rest.
			sim2 := simtest.Start(t, modemsim.Fast())
			cfg2 := modemConfig(sim2, broker.Addr(), dir)
			sum2, err := uplink.RunWindow(context.Background(), cfg2, q)
			if err != nil {
				t.Fatalf("clean window after the fault: %v", err)
			}
			if depth(t, q) != 0 {
				t.Errorf("records left after the clean window: %+v", sum2)
			}
			if !broker.WaitCount(n, 5*time.Second) {
				t.Errorf("broker has %d messages, want at least %d", broker.Count(), n)
			}
			dups := broker.Count() - n
			t.Logf("duplicates delivered: %d", dups)
			if dups > sum.Sent {
				t.Errorf("%d duplicates but only %d were in flight", dups, sum.Sent)
			}
		})
	}
}

func TestWindowRefusedLogin(t *testing.T) {
	broker := startBroker(t, brokertest.Options{Username: testUser, Password: testPassword})
	for _, v := range []codec.Version{codec.V311, codec.V5} {
		t.Run(v.String(), func(t *testing.T) {
			sim := simtest.Start(t, modemsim.Fast())
			q, dir := openQueue(t)
			enqueueReadings(t, q, 50, 1)
			cfg := modemConfig(sim, broker.Addr(), dir)
			cfg.MQTTVersion = v
			cfg.Password = []byte("wrong")
			sum, err := uplink.RunWindow(context.Background(), cfg, q)
			if err == nil {
				t.Fatal("window with a wrong password succeeded")
			}
			var ce *codec.ConnackError
			if !errors.As(err, &ce) {
				t.Errorf("error %v does not carry the CONNACK refusal", err)
			}
			if sum.Acked != 0 || depth(t, q) != 50 {
				t.Errorf("records touched: acked %d, depth %d", sum.Acked, depth(t, q))
			}
			if sim.RadioOn() {
				t.Error("radio left on")
			}
			t.Logf("refusal: %v", err)
		})
	}
}

func TestWindowBrokerDown(t *testing.T) {
	addr := testkit.ClosedAddr(t) // nothing listens there now
	sim := simtest.Start(t, modemsim.Fast())
	q, dir := openQueue(t)
	enqueueReadings(t, q, 10, 1)
	_, err := uplink.RunWindow(context.Background(), modemConfig(sim, addr, dir), q)
	var se *fault.StepError
	if !errors.As(err, &se) || se.Step != uplink.StepTCPConnect {
		t.Fatalf("err = %v, want a tcp connect step error", err)
	}
	if depth(t, q) != 10 {
		t.Error("records lost")
	}
}

func TestWindowCancelledSwitchesRadioOff(t *testing.T) {
	broker := startBroker(t, brokertest.Options{})
	cfgSim := modemsim.Fast()
	cfgSim.Faults = modemsim.Faults{NoRegistration: true}
	sim := simtest.Start(t, cfgSim)
	q, dir := openQueue(t)
	enqueueReadings(t, q, 10, 1)
	cfg := modemConfig(sim, broker.Addr(), dir)
	cfg.RegistrationTimeout = time.Minute
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(700*time.Millisecond, cancel) // as SIGTERM does
	_, err := uplink.RunWindow(ctx, cfg, q)
	if err == nil {
		t.Fatal("cancelled window succeeded")
	}
	if sim.RadioOn() {
		t.Error("radio left on after cancellation")
	}
	if depth(t, q) != 10 {
		t.Error("records lost")
	}
}

func TestModemLockBusy(t *testing.T) {
	sim := simtest.Start(t, modemsim.Fast())
	q, dir := openQueue(t)
	enqueueReadings(t, q, 3, 1)
	cfg := modemConfig(sim, "127.0.0.1:1", dir)
	held, err := uplink.AcquireModemLock(context.Background(), cfg.LockPath, "uploader flush", time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = held.Release() }()
	if err := q.PutWindowSummary([]byte(`{"outcome":"ok","acked":7}`)); err != nil {
		t.Fatal(err)
	}
	cfg.ModemLockTimeout = 200 * time.Millisecond
	_, err = uplink.RunWindow(context.Background(), cfg, q)
	var busy *uplink.BusyError
	if !errors.Is(err, uplink.ErrModemBusy) || !errors.As(err, &busy) {
		t.Fatalf("err = %v, want modem busy", err)
	}
	if want := "pid " + strconv.Itoa(os.Getpid()) + " (uploader flush)"; !bytes.Contains([]byte(busy.Holder), []byte(want)) {
		t.Errorf("holder %q does not name %q", busy.Holder, want)
	}
	if sim.Accounting().ATCommands != 0 {
		t.Error("a second process talked to the modem while it was locked")
	}
	// The window that gave up leaves the running window's record alone
	// and is counted apart.
	if raw, _ := q.WindowSummary(); string(raw) != `{"outcome":"ok","acked":7}` {
		t.Errorf("stored summary overwritten by a window that never got the modem: %s", raw)
	}
	if skips, err := uplink.ReadWindowSkips(q); err != nil || skips.Busy != 1 {
		t.Errorf("skips = %+v, %v; want one busy window counted", skips, err)
	}
}

var mqttSteps = []string{session.StepConnect, session.StepPublish, session.StepWaitAcks}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// fakeGPIO plays a board's power switch. The configured shell commands
// write 1 or 0 to a request FIFO and then block reading an acknowledgement
// FIFO; the switch reads the request, powers the simulated module on or off
// and only then acknowledges, so a command returns once the switch has
// acted, as a GPIO write does, with no polling and no sleep on either side.
func fakeGPIO(t *testing.T, sim *modemsim.Sim) (on, off string, flips func() []string) {
	t.Helper()
	dir := t.TempDir()
	reqPath, ackPath := filepath.Join(dir, "gpio-req"), filepath.Join(dir, "gpio-ack")
	for _, p := range []string{reqPath, ackPath} {
		if err := unix.Mkfifo(p, 0o600); err != nil {
			t.Fatalf("mkfifo %s: %v", p, err)
		}
	}
	// Read-write, so the switch never sees end-of-file between commands
	// and the open does not wait for a writer.
	req, err := os.OpenFile(reqPath, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu   sync.Mutex
		seen []string
	)
	done := make(chan struct{})
	go func() {
		defer close(done)
		lines := bufio.NewScanner(req)
		for lines.Scan() {
			v := strings.TrimSpace(lines.Text())
			switch v {
			case "1":
				sim.PowerOn()
			case "0":
				sim.PowerOff()
			default: // "stop" from the cleanup
				return
			}
			mu.Lock()
			seen = append(seen, v)
			mu.Unlock()
			// Opening for writing waits until the command opens the FIFO
			// to read its acknowledgement.
			ack, err := os.OpenFile(ackPath, os.O_WRONLY, 0)
			if err != nil {
				return
			}
			_, _ = ack.WriteString("ok\n")
			ack.Close()
		}
	}()
	t.Cleanup(func() {
		// A command killed before it read its acknowledgement leaves the
		// switch waiting in the open above: be that reader.
		unblock, err := os.OpenFile(ackPath, os.O_RDONLY|unix.O_NONBLOCK, 0)
		if err == nil {
			defer unblock.Close()
		}
		_, _ = req.WriteString("stop\n")
		<-done
		req.Close()
	})
	flips = func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), seen...)
	}
	command := func(v string) string {
		return "echo " + v + " > " + reqPath + " && read ack < " + ackPath
	}
	return command("1"), command("0"), flips
}

func TestWindowPowerSwitch(t *testing.T) {
	broker := startBroker(t, brokertest.Options{})
	simCfg := modemsim.Fast()
	simCfg.StartPoweredOff = true
	sim := simtest.Start(t, simCfg)
	on, off, flips := fakeGPIO(t, sim)
	q, dir := openQueue(t)
	enqueueReadings(t, q, 20, 1)
	cfg := modemConfig(sim, broker.Addr(), dir)
	cfg.Power = uplink.PowerCommands{On: on, Off: off, BootWait: 100 * time.Millisecond}

	sum, err := uplink.RunWindow(context.Background(), cfg, q)
	if err != nil || sum.Acked != 20 {
		t.Fatalf("window with a power switch: %+v %v", sum, err)
	}
	if sim.PoweredOn() {
		t.Error("module still powered after the window")
	}
	if got := flips(); len(got) != 2 || got[0] != "1" || got[1] != "0" {
		t.Errorf("power switch flips %v, want [1 0]", got)
	}

	// A module that stops answering is power-cycled and the window goes on.
	enqueueReadings(t, q, 20, 1)
	if err := sim.SetFaults(modemsim.Faults{HangAfterCommands: 1}); err != nil {
		t.Fatal(err)
	}
	sum, err = uplink.RunWindow(context.Background(), cfg, q)
	if err != nil || sum.Acked != 20 {
		t.Fatalf("window with a hung module: %+v %v", sum, err)
	}
	if got := flips(); len(got) < 6 {
		t.Errorf("power switch flips %v: want on, off, on (cycle) ... off", got)
	}
	if sim.PoweredOn() {
		t.Error("module still powered after the window")
	}
}
