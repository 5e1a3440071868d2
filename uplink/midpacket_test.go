package uplink_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nbiot-uploader/uploader/codec"
	"github.com/nbiot-uploader/uploader/queue"
	"github.com/nbiot-uploader/uploader/uplink"
	"github.com/nbiot-uploader/uploader/uplink/brokertest"
	"github.com/nbiot-uploader/uploader/uplink/modem"
	"github.com/nbiot-uploader/uploader/uplink/modemsim"
	"github.com/nbiot-uploader/uploader/uplink/modemsim/simtest"
	"github.com/nbiot-uploader/uploader/uplink/testkit"
)

// A window that dies (SIGKILL, a board reset with the modem still powered)
// after the prompt of the second AT+CIPSEND of a PUBLISH larger than one
// chunk leaves the broker holding the first part of that PUBLISH and the
// module waiting for the rest. The next process's first bytes (AT probes,
// then the data-mode filler) would complete it, and the broker would route
// a corrupted reading. These tests build exactly that state on the real
// serial path (simulator on a pty, mochi broker) and check what the next
// window does with it.
func TestWindowAfterDeathMidPublish(t *testing.T) {
	if testing.Short() {
		t.Skip("waits out a 5 s keep-alive")
	}
	t.Parallel()        // mostly waiting for the broker's keep-alive
	const keepAlive = 5 // seconds; the broker drops the dead connection after 7.5 s
	tests := []struct {
		name        string
		atBoundary  bool // it died before a chunk that starts a packet
		mark        bool // the dead window left its mark in the modem lock
		powerSwitch bool
		wantGarbled bool
		wantWait    bool
	}{
		// Without the mark the probes complete the PUBLISH: this shows the
		// state is the dangerous one, so the cases below prove something.
		{name: "no mark: the hazard is real", wantGarbled: true},
		{name: "mark: waits for the broker's keep-alive", mark: true, wantWait: true},
		{name: "mark and power switch: power-cycles", mark: true, powerSwitch: true},
		// Chunks end on packet boundaries, so a death before any chunk but
		// the second of a split PUBLISH leaves the broker between packets:
		// the probes and the filler are no PUBLISH, and the broker closes.
		{name: "died at a packet boundary: nothing to wait for", atBoundary: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel() // each has its own broker, simulator and queue
			broker := startBroker(t, brokertest.Options{Username: testUser, Password: testPassword})
			simCfg := modemsim.Fast()
			simCfg.StartPoweredOff = tt.powerSwitch
			sim := simtest.Start(t, simCfg)
			q, dir := openQueue(t)
			big := queue.Record{Topic: "sites/s7/spectrum", Payload: bigReading(2500), QoS: 1}
			if _, err := q.Enqueue(big); err != nil {
				t.Fatal(err)
			}
			small := enqueueReadings(t, q, 20, 1)
			cfg := modemConfig(sim, broker.Addr(), dir)
			cfg.KeepAlive = keepAlive
			var flips func() []string
			if tt.powerSwitch {
				cfg.Power.On, cfg.Power.Off, flips = fakeGPIO(t, sim)
				cfg.Power.BootWait = 200 * time.Millisecond
				runCommand(t, cfg.Power.On)
			}

			dieMidPublish(t, sim, cfg, big, !tt.atBoundary, tt.mark)
			died := time.Now()

			var logs testkit.SyncBuffer
			cfg.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
			cfg.Trace = cfg.Logger
			sum, err := uplink.RunWindow(context.Background(), cfg, q)
			if err != nil {
				t.Fatalf("window after the death: %v\n%s", err, logs.String())
			}
			if sum.Acked != 1+len(small) || depth(t, q) != 0 {
				t.Errorf("acked %d of %d, %d left queued", sum.Acked, 1+len(small), depth(t, q))
			}
			broker.WaitCount(1+len(small), 5*time.Second)

			var garbled, whole int
			for _, m := range broker.Messages() {
				if m.Topic != big.Topic {
					continue
				}
				if bytes.Equal(m.Payload, big.Payload) {
					whole++
				} else {
					garbled++
					t.Logf("garbled delivery: %d bytes, ends %q", len(m.Payload), m.Payload[max(0, len(m.Payload)-24):])
				}
			}
			if whole != 1 {
				t.Errorf("the big reading arrived whole %d times, want 1", whole)
			}
			if got := garbled > 0; got != tt.wantGarbled {
				t.Errorf("garbled deliveries: %d, want some: %v\n%s", garbled, tt.wantGarbled, logs.String())
			}
			waited := strings.Contains(logs.String(), "waiting for the broker to drop that connection")
			if waited != tt.wantWait {
				t.Errorf("window waited for the broker: %v, want %v", waited, tt.wantWait)
			}
			if tt.wantWait {
				if d := time.Since(died); d < 7500*time.Millisecond {
					t.Errorf("next window done %v after the death; it must not talk to the module before the broker's 7.5 s keep-alive ran out", d)
				}
			}
			if tt.powerSwitch {
				if got := flips(); len(got) < 3 || got[1] != "0" || got[2] != "1" {
					t.Errorf("power switch flips %v, want the module cycled (1, 0, 1, ...) before the window", got)
				}
			}
			checkNoMark(t, cfg.LockPath)
		})
	}
}

// dieMidPublish plays a window that dies after the prompt of the second
// CIPSEND of big's PUBLISH: connection up, CONNECT accepted, the first
// chunk of the PUBLISH delivered, "AT+CIPSEND=<n>" answered with "> ", and
// then nothing more from the host. With mark it leaves the mark the window's
// split-write guard writes before that CIPSEND. With split false it dies
// after the prompt of the PUBLISH's first chunk instead.
func dieMidPublish(t *testing.T, sim *modemsim.Sim, cfg uplink.Config, big queue.Record, split, mark bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	lock, err := uplink.AcquireModemLock(ctx, cfg.LockPath, "dying window", time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = lock.Release() }() // what the kernel does for a dead process

	port, err := modem.OpenSerial(sim.Path(), cfg.Baud)
	if err != nil {
		t.Fatal(err)
	}
	m := modem.New(port, modem.Options{QuickSend: true})
	step := func(what string, err error) {
		t.Helper()
		if err != nil {
			m.Close()
			t.Fatalf("dying window, %s: %v", what, err)
		}
	}
	step("sync", m.Sync(ctx))
	step("radio on", m.SetFunctionality(ctx, 1))
	_, err = m.WaitRegistered(ctx, 5*time.Second)
	step("registration", err)
	_, err = m.StartBearer(ctx, cfg.APN, "", "")
	step("bearer", err)
	host, portStr, _ := net.SplitHostPort(cfg.Broker)
	brokerPort, _ := strconv.Atoi(portStr)
	conn, err := m.Dial(ctx, host, brokerPort)
	step("dial", err)

	connect, err := codec.AppendConnect(nil, &codec.Connect{
		Version: cfg.MQTTVersion, ClientID: cfg.ClientID, CleanStart: true, KeepAlive: cfg.KeepAlive,
		HasUsername: true, Username: cfg.Username, HasPassword: true, Password: cfg.Password,
	})
	step("encode CONNECT", err)
	_, err = conn.Write(connect)
	step("write CONNECT", err)
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	p, err := codec.NewDecoder(conn, cfg.MQTTVersion, 1<<16).Next()
	step("read CONNACK", err)
	if p.Type != codec.TypeConnack || p.Connack.Err(cfg.MQTTVersion) != nil {
		step("CONNACK", fmt.Errorf("%w: got %s", io.ErrUnexpectedEOF, p.Type))
	}

	publish, err := codec.AppendPublish(nil, cfg.MQTTVersion, &codec.Publish{Topic: big.Topic, Payload: big.Payload, QoS: 1, PacketID: 1})
	step("encode PUBLISH", err)
	chunk := conn.MaxChunk()
	if len(publish) <= chunk || len(publish) > 2*chunk {
		t.Fatalf("PUBLISH of %d bytes; the test wants it in exactly two chunks of %d", len(publish), chunk)
	}
	pending := chunk
	if split {
		_, err = conn.Write(publish[:chunk])
		step("first chunk", err)
		pending = len(publish) - chunk
	}
	if mark {
		step("mark", uplink.MarkMidPacket(cfg.LockPath, time.Duration(cfg.KeepAlive)*time.Second))
	}
	m.Close()

	// The second CIPSEND, by hand: the driver would write the payload as
	// soon as the prompt came; this host dies instead.
	raw, err := modem.OpenSerial(sim.Path(), cfg.Baud)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if _, err := raw.Write([]byte("AT+CIPSEND=" + strconv.Itoa(pending) + "\r")); err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 1)
	go func() {
		var seen []byte
		buf := make([]byte, 64)
		for !bytes.Contains(seen, []byte("> ")) {
			n, err := raw.Read(buf)
			if err != nil {
				break
			}
			seen = append(seen, buf[:n]...)
		}
		got <- string(seen)
	}()
	select {
	case s := <-got:
		if !strings.Contains(s, "> ") {
			t.Fatalf("no prompt for the second chunk: %q", s)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no prompt for the second chunk in 5 s")
	}
}

// checkNoMark fails the test when the modem lock still holds a mid-packet
// mark.
func checkNoMark(t *testing.T, lockPath string) {
	t.Helper()
	until, err := uplink.ReadMidPacketMark(lockPath)
	if err != nil {
		t.Fatal(err)
	}
	if !until.IsZero() {
		t.Errorf("mid-packet mark still set after a clean window: %v", until)
	}
}

// bigReading is a JSON reading of about n bytes: any change to its tail
// makes it invalid.
func bigReading(n int) []byte {
	var b strings.Builder
	b.WriteString(`{"id":"spectrum-1","bins":[`)
	for i := 0; b.Len() < n-20; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Itoa(i * 7 % 1000))
	}
	b.WriteString(`],"unit":"dB"}`)
	return []byte(b.String())
}

// runCommand runs a shell command as the window runs power commands.
func runCommand(t *testing.T, command string) {
	t.Helper()
	if out, err := exec.Command("/bin/sh", "-c", command).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v (%s)", command, err, out)
	}
}

// A live window whose PUBLISH of 1,470 bytes stops after its first chunk
// because the module's prompt for the last 10 bytes comes late: the module
// then takes the next 10 bytes it hears as the end of that PUBLISH. The
// window must not send it AT+CIPCLOSE or AT+CFUN=0 (which would become a
// corrupted reading) until the broker has dropped the connection, or must
// cut the module's power.
func TestWindowSplitWriteLostPrompt(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for a 6 s late prompt and a 5 s keep-alive")
	}
	t.Parallel() // mostly waiting
	for _, powerSwitch := range []bool{false, true} {
		t.Run(map[bool]string{false: "no power switch", true: "power switch"}[powerSwitch], func(t *testing.T) {
			t.Parallel()
			broker := startBroker(t, brokertest.Options{Username: testUser, Password: testPassword})
			simCfg := modemsim.Fast()
			simCfg.Faults.LatePromptOn = 3 // CONNECT, the PUBLISH's first chunk, its last 10 bytes
			simCfg.StartPoweredOff = powerSwitch
			sim := simtest.Start(t, simCfg)
			q, dir := openQueue(t)
			cfg := modemConfig(sim, broker.Addr(), dir)
			cfg.MQTTVersion = codec.V311
			// The broker drops the connection 7.5 s after CONNECT; the
			// module hears the window's next bytes after its 6 s late
			// prompt, so without care they reach the broker.
			cfg.KeepAlive = 5
			big := queue.Record{Topic: "sites/s7/spectrum", QoS: 1}
			big.Payload = readingOfSize(t, cfg.MQTTVersion, big.Topic, 1460+10)
			if _, err := q.Enqueue(big); err != nil {
				t.Fatal(err)
			}
			if powerSwitch {
				cfg.Power.On, cfg.Power.Off, _ = fakeGPIO(t, sim)
				cfg.Power.BootWait = 200 * time.Millisecond
			}
			var logs testkit.SyncBuffer
			cfg.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
			cfg.Trace = cfg.Logger

			_, err := uplink.RunWindow(context.Background(), cfg, q)
			if !errors.Is(err, modem.ErrSplitWriteCut) {
				t.Fatalf("window error %v, want ErrSplitWriteCut\n%s", err, logs.String())
			}
			if strings.Contains(logs.String(), "AT+CIPCLOSE") {
				t.Errorf("the window sent AT+CIPCLOSE to a module waiting for the rest of a PUBLISH")
			}
			// The simulator acts on the power switch once its late prompt
			// is out; a real module loses its supply at once.
			if !testkit.WaitUntil(modemsim.LatePromptDelay+10*time.Second, func() bool { return !sim.RadioOn() }) {
				t.Errorf("radio left on\n%s", logs.String())
			}
			// The next window delivers the reading, once and whole.
			cfg.Logger, cfg.Trace = nil, nil
			if _, err := uplink.RunWindow(context.Background(), cfg, q); err != nil {
				t.Fatalf("next window: %v", err)
			}
			// A marker reading in one more window under the same client
			// identifier: once it is routed, the broker has taken that
			// session over from the windows before, so a stray or second
			// copy of the big reading would have been routed already.
			marker := queue.Record{Topic: "sites/s7/marker", QoS: 1, Payload: []byte("marker")}
			if _, err := q.Enqueue(marker); err != nil {
				t.Fatal(err)
			}
			if _, err := uplink.RunWindow(context.Background(), cfg, q); err != nil {
				t.Fatalf("marker window: %v", err)
			}
			if !testkit.WaitUntil(10*time.Second, func() bool { return slices.ContainsFunc(broker.Messages(), isMarker) }) {
				t.Fatalf("the marker reading was not routed; messages: %d", broker.Count())
			}
			n := 0
			for _, m := range broker.Messages() {
				if isMarker(m) {
					continue
				}
				n++
				if !bytes.Equal(m.Payload, big.Payload) {
					t.Errorf("garbled delivery on %s: %d bytes ending %q", m.Topic, len(m.Payload), m.Payload[max(0, len(m.Payload)-16):])
				}
			}
			if n != 1 {
				t.Errorf("%d deliveries, want 1", n)
			}
			checkNoMark(t, cfg.LockPath)
		})
	}
}

// readingOfSize is a JSON reading whose QoS 1 PUBLISH on topic takes
// exactly size bytes.
func readingOfSize(t *testing.T, v codec.Version, topic string, size int) []byte {
	t.Helper()
	for n := size; n > 0; n-- {
		payload := []byte(`{"id":"spectrum-2","pad":"` + strings.Repeat("x", n) + `"}`)
		got, err := codec.PublishSize(v, &codec.Publish{Topic: topic, Payload: payload, QoS: 1, PacketID: 1})
		if err != nil {
			t.Fatal(err)
		}
		if got == size {
			return payload
		}
	}
	t.Fatalf("no payload makes a %d-byte PUBLISH", size)
	return nil
}

// isMarker tells the marker reading of TestWindowSplitWriteLostPrompt.
func isMarker(m brokertest.Message) bool { return m.Topic == "sites/s7/marker" }
