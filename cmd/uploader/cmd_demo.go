//go:build !board

package main

import (
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/nbiot-uploader/uploader/codec"
	"github.com/nbiot-uploader/uploader/queue"
	"github.com/nbiot-uploader/uploader/uplink"
	"github.com/nbiot-uploader/uploader/uplink/brokertest"
	"github.com/nbiot-uploader/uploader/uplink/modemsim"
)

func demoCommand(e *env) *cli.Command {
	flags := []cli.Flag{
		&cli.StringFlag{Name: "config", Usage: "configuration file (YAML, or TOML when it ends in .toml); keys are the flag names", EnvVars: envName("config")},
		intFlag("readings", 300, "how many readings to enqueue"),
		strFlag("mqtt-version", "5", "MQTT protocol: 3.1, 3.1.1 or 5 (5 shows topic aliases)"),
		strFlag("profile", "fast", "simulator timing profile: fast, nbiot or ltem"),
		intFlag("sim-baud", 115200, "serial pacing of the simulated UART (0 = unpaced)"),
		boolFlag("virtual-clock", "model the radio's delays on a virtual clock instead of waiting for them (use with --profile nbiot)"),
		strFlag("log-level", "warn", "log level"),
		boolFlag("trace", "log every AT line in and out (needs --log-level debug)"),
	}
	cmd := command("demo", "the whole job on this machine: an in-process MQTT broker, a simulated SIM7000, real readings, one real window", "", flags, func(c *cli.Context) error {
		return runDemo(c, e)
	})
	cmd.Description = "Starts an MQTT broker (mochi-mqtt) on 127.0.0.1 with a password, a simulated SIM7000 on a pseudo-terminal,\n" +
		"enqueues realistic sensor readings into a fresh queue file, runs one window through the real serial code path,\n" +
		"and shows what the broker received next to what was enqueued. Needs nothing installed.\n" +
		"Try --profile nbiot --virtual-clock to see the modelled NB-IoT radio-on time."
	return cmd
}

const (
	demoClientID = "site-042"
	demoUser     = "site-042"
	demoPassword = "demo-secret"
)

func runDemo(c *cli.Context, e *env) error {
	ctx := c.Context
	log, err := newLogger(e.stderr, c.String("log-level"))
	if err != nil {
		return err
	}
	n := c.Int("readings")
	if n < 1 || n > 1_000_000 {
		return usagef("--readings %d: use 1..1000000", n)
	}
	version, err := codec.ParseVersion(c.String("mqtt-version"))
	if err != nil {
		return usagef("--mqtt-version %q: use 3.1, 3.1.1 or 5", c.String("mqtt-version"))
	}
	simCfg, err := modemsim.ProfileByName(c.String("profile"))
	if err != nil {
		return usagef("--profile: %v", err)
	}
	if b := c.Int("sim-baud"); b >= 0 {
		simCfg.Baud = b
	}
	simCfg.VirtualClock = c.Bool("virtual-clock")
	simCfg.Logger = log

	dir, err := os.MkdirTemp("", "uploader-demo-")
	if err != nil {
		return fmt.Errorf("demo: temporary directory: %w", err)
	}
	defer os.RemoveAll(dir)

	// 1. The broker, with a real password check.
	broker, err := brokertest.Start(brokertest.Options{Username: demoUser, Password: demoPassword, Logger: log})
	if err != nil {
		return err
	}
	defer broker.Close()
	addr := broker.Addr()

	// 2. The simulated SIM7000 on a pseudo-terminal.
	sim, err := modemsim.Start(simCfg)
	if err != nil {
		return fmt.Errorf("demo: start simulator: %w", err)
	}
	defer sim.Close()

	// 3. Readings, enqueued as sensor scripts would: one call per sample time.
	q, err := queue.Open(filepath.Join(dir, "queue.db"), nil)
	if err != nil {
		return err
	}
	defer q.Close()
	enqueued, err := enqueueDemoReadings(q, n)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "enqueued %d readings from 3 sensors into %s\n", len(enqueued), q.Path())
	fmt.Fprintf(e.stdout, "broker (mochi-mqtt, password required) on %s; simulated SIM7000 (%s profile) on %s\n\n", addr, c.String("profile"), sim.Path())

	// 4. One real window through the serial port.
	cfg := uplink.Defaults()
	cfg.Transport = uplink.TransportModem
	cfg.Device = sim.Path()
	cfg.Baud = 115200
	cfg.APN = "iot.demo"
	cfg.Broker = addr
	cfg.ClientID = demoClientID
	cfg.Username = demoUser
	cfg.Password = []byte(demoPassword)
	cfg.MQTTVersion = version
	cfg.RegistrationTimeout = 30 * time.Second
	cfg.WindowTimeout = 5 * time.Minute
	cfg.LockPath = filepath.Join(dir, "queue.db.modem.lock")
	cfg.Logger = log
	if c.Bool("trace") {
		cfg.Trace = log
	}
	sum, werr := uplink.RunWindow(ctx, cfg, q)

	// The broker hands messages to the subscriber asynchronously.
	broker.WaitCount(sum.Acked, 3*time.Second)
	msgs := broker.Messages()
	st, serr := q.Stats()
	if serr != nil {
		return serr
	}
	showDemoResult(e.stdout, enqueued, msgs, sum, sim.Accounting(), st.Depth)
	if werr != nil {
		return fmt.Errorf("demo window failed: %w", werr)
	}
	if missing := countMissing(enqueued, msgs); missing > 0 {
		return fmt.Errorf("demo: %d acknowledged readings never reached the subscriber", missing)
	}
	return nil
}

type demoReading struct {
	seq     uint64
	topic   string
	payload string
}

// enqueueDemoReadings makes plausible air-quality readings: every minute
// one PM2.5, one temperature and one humidity value.
func enqueueDemoReadings(q *queue.Queue, n int) ([]demoReading, error) {
	sensors := []struct {
		topic string
		value func(i int) float64
		unit  string
	}{
		{"sites/site-042/air/pm25", func(i int) float64 { return 12 + 6*math.Sin(float64(i)/17) }, "ug/m3"},
		{"sites/site-042/air/temperature", func(i int) float64 { return 18 + 4*math.Sin(float64(i)/40) }, "C"},
		{"sites/site-042/air/humidity", func(i int) float64 { return 61 - 9*math.Sin(float64(i)/33) }, "%"},
	}
	start := time.Now().Add(-time.Duration(n/len(sensors)) * time.Minute).Truncate(time.Minute)
	var out []demoReading
	for i := 0; len(out) < n; i++ {
		var batch []queue.Record
		at := start.Add(time.Duration(i) * time.Minute)
		for _, s := range sensors {
			if len(out)+len(batch) == n {
				break
			}
			payload := fmt.Sprintf(`{"t":"%s","v":%.2f,"u":"%s"}`, at.UTC().Format("2006-01-02T15:04Z"), s.value(i), s.unit)
			batch = append(batch, queue.Record{Topic: s.topic, Payload: []byte(payload), QoS: 1})
		}
		seqs, err := q.Enqueue(batch...)
		if err != nil {
			return nil, fmt.Errorf("demo: enqueue: %w", err)
		}
		for j, r := range batch {
			out = append(out, demoReading{seq: seqs[j], topic: r.Topic, payload: string(r.Payload)})
		}
	}
	return out, nil
}

func countMissing(enq []demoReading, got []brokertest.Message) int {
	have := make(map[string]bool, len(got))
	for _, m := range got {
		have[m.Topic+"\x00"+string(m.Payload)] = true
	}
	missing := 0
	for _, r := range enq {
		if !have[r.topic+"\x00"+r.payload] {
			missing++
		}
	}
	return missing
}

func showDemoResult(w io.Writer, enq []demoReading, got []brokertest.Message, sum uplink.Summary, acc modemsim.Accounting, left int64) {
	byTopicEnq := map[string]int{}
	byTopicGot := map[string]int{}
	for _, r := range enq {
		byTopicEnq[r.topic]++
	}
	for _, m := range got {
		byTopicGot[m.Topic]++
	}
	topics := make([]string, 0, len(byTopicEnq))
	for t := range byTopicEnq {
		topics = append(topics, t)
	}
	sort.Strings(topics)
	fmt.Fprintf(w, "%-34s %10s %10s\n", "topic", "enqueued", "received")
	for _, t := range topics {
		fmt.Fprintf(w, "%-34s %10d %10d\n", t, byTopicEnq[t], byTopicGot[t])
	}
	gotBySeq := map[string]brokertest.Message{}
	for _, m := range got {
		if m.Seq != "" {
			gotBySeq[m.Seq] = m
		}
	}
	fmt.Fprintf(w, "\n%-5s %-46s %-46s\n", "seq", "enqueued payload", "received payload (seq user property)")
	show := func(r demoReading) {
		m, ok := gotBySeq[strconv.FormatUint(r.seq, 10)]
		recv := "(not received)"
		if ok {
			recv = string(m.Payload)
		} else if len(gotBySeq) == 0 {
			// MQTT 3.x has no user properties: match on content instead.
			for _, g := range got {
				if g.Topic == r.topic && string(g.Payload) == r.payload {
					recv = string(g.Payload)
					break
				}
			}
		}
		fmt.Fprintf(w, "%-5d %-46s %-46s\n", r.seq, r.payload, recv)
	}
	for i, r := range enq {
		if i < 4 || i >= len(enq)-2 {
			show(r)
		} else if i == 4 {
			fmt.Fprintf(w, "%-5s %-46s %-46s\n", "...", "...", "...")
		}
	}
	fmt.Fprintf(w, "\nenqueued %d, acknowledged and deleted %d, received by the subscriber %d, missing %d, left in queue %d\n",
		len(enq), sum.Acked, len(got), countMissing(enq, got), left)
	fmt.Fprintf(w, "window: %s\n", sum.String())
	fmt.Fprintf(w, "modem:  %d AT commands, %d CIPSEND chunks (largest %d bytes), UART %d bytes to the module, air %d bytes up / %d down, modelled radio-on %.1f s\n",
		acc.ATCommands, acc.CIPSENDCalls, acc.LargestChunk, acc.UARTBytesIn, acc.AirBytesUp, acc.AirBytesDown, acc.RadioOnSeconds)
	if len(enq) > 0 {
		fmt.Fprintf(w, "cost:   %.1f MQTT bytes and %.1f air bytes per reading\n", float64(sum.MQTTBytesOut)/float64(len(enq)), float64(acc.AirBytesUp)/float64(len(enq)))
	}
}
