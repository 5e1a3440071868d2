package e2e

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// faultCase is one fault of the simulator, tuned to hit in the middle of a
// 150-reading window (about 6 KB of MQTT in 5 CIPSEND chunks, the first
// after 18 AT commands).
type faultCase struct {
	name string
	spec string // uploader simulate --faults
	// steps are what the failed window may name, by when the fault hit (a
	// session names its own finer step); none when the window must survive
	// the fault.
	steps []string
	// hangs: the module answers nothing afterwards, so without a power
	// switch the radio cannot be switched off, and the window must say so.
	hangs bool
}

// mqttSteps are the steps of the MQTT session over the open connection:
// the session's own, finer names, or the window's "mqtt session" when the
// session's error does not carry one.
var mqttSteps = []string{"mqtt session", "mqtt connect", "mqtt publish", "mqtt wait acks"}

var faultCases = []faultCase{
	{name: "remote-close", spec: "remote-close=3000", steps: mqttSteps},
	{name: "hang", spec: "hang=24", steps: mqttSteps, hangs: true},
	{name: "cipsend-error", spec: "error=CIPSEND:3", steps: mqttSteps},
	{name: "garbage", spec: "garbage=5"},
	{name: "reboot", spec: "reboot=24", steps: mqttSteps},
	{name: "pdp-deact", spec: "pdp-deact=3000", steps: mqttSteps},
	{name: "connect-fail", spec: "connect-fail", steps: []string{"tcp connect"}},
	{name: "no-registration", spec: "no-registration", steps: []string{"registration"}},
	{name: "lose-data", spec: "lose-data=3000", steps: mqttSteps},
}

// matrixReadings is how many readings each cell enqueues.
const matrixReadings = 150

// TestFaultMatrix runs every simulator fault × QoS 0/1 × MQTT 3.1.1/5: the
// faulty window fails in time naming its step (garbage is survived), the
// radio ends off, nothing unacknowledged is deleted, and a clean window
// then delivers the rest with duplicates only of what was in flight. The
// four QoS × protocol combinations alternate between mochi and mosquitto,
// so every fault meets both brokers.
func TestFaultMatrix(t *testing.T) {
	requireE2E(t)
	mochi := startMochi(t)
	var mosq broker
	var mosqSkip string
	if bin, passwd := findMosquitto(); bin != "" && passwd != "" {
		mosq = startMosquitto(t)
	} else {
		mosqSkip = "mosquitto is not installed: apt-get install mosquitto"
	}
	for _, fc := range faultCases {
		for _, qos := range []int{0, 1} {
			for _, version := range []string{"3.1.1", "5"} {
				var brk broker = mochi
				if (qos == 1) == (version == "3.1.1") {
					brk = mosq
				}
				name := fmt.Sprintf("%s/qos%d/mqtt%s", fc.name, qos, version)
				t.Run(name, func(t *testing.T) {
					t.Parallel()
					if brk == nil {
						t.Skip(mosqSkip)
					}
					runFaultCell(t, brk, fc, qos, version)
				})
			}
		}
	}
}

func runFaultCell(t *testing.T, brk broker, fc faultCase, qos int, version string) {
	s := newScenario(t, brk, version)
	s.enqueueConcurrently(matrixReadings, qos)

	sim := startSimulator(t, fc.spec)
	r := s.flush(sim.path)
	st := s.status()
	lw := st.LastWindow
	if lw == nil {
		t.Fatalf("no window summary stored; flush: %s", r)
	}
	if len(fc.steps) == 0 {
		if r.code != 0 || lw.Outcome != "ok" {
			t.Errorf("the window must survive %s: %s", fc.spec, r)
		}
	} else {
		if r.code != 1 {
			t.Errorf("the window under %s must exit 1: %s", fc.spec, r)
		}
		if !slices.Contains(fc.steps, lw.Step) || !strings.Contains(r.stderr, "uploader: window failed: "+lw.Step+": ") {
			t.Errorf("the failed window names step %q, want one of %q: %s", lw.Step, fc.steps, r)
		}
		if r.elapsed > faultyWindowDeadline {
			t.Errorf("the failed window took %v, more than its deadline %v (window %v + radio off %v + 5 s slack)",
				r.elapsed, faultyWindowDeadline, windowTimeout, radioOffBudget)
		}
	}
	t.Logf("faulty window (%s) on %s: exit %d after %v: %s; %d of %d acknowledged, %d sent",
		fc.spec, brk.Name(), r.code, r.elapsed.Round(1e6), lw.Error, lw.Acked, lw.Queued, lw.Sent)
	if st.Depth != lw.Queued-int64(lw.Acked) {
		t.Errorf("queue depth %d after the window, want %d queued - %d acknowledged", st.Depth, lw.Queued, lw.Acked)
	}
	if fc.hangs {
		// A hung module answers nothing; only a power switch
		// (--power-off-cmd) could turn it off, and none is configured. The
		// window must at least report that the radio may still be on.
		if lw.RadioOffError == "" {
			t.Errorf("the module hung, yet the window reports the radio switched off: %+v", lw)
		}
	} else {
		s.checkRadioOff(sim.path)
	}
	acc := sim.stop(t)
	t.Logf("simulator: %d AT commands, %d CIPSEND, %d TCP connections, %d reboots, %d MQTT bytes up, %d lost",
		acc.ATCommands, acc.CIPSENDCalls, acc.TCPConnections, acc.Reboots, acc.MQTTBytesUp, acc.LostBytesUp)

	inFlight := s.stableDeliveries()
	if st.Depth > 0 {
		s.cleanWindow()
	}
	s.account(lw.Sent-lw.Acked, idSet(inFlight))
}

// TestHangWithPowerSwitch: with a power switch configured, a hung module
// is powered off at the end of the failed window, so the radio ends off
// even though the module answers nothing. The simulator stands in for the
// supply: --power-off-cmd ends its process (it prints its accounting and
// exits 0, as on any SIGTERM).
func TestHangWithPowerSwitch(t *testing.T) {
	requireE2E(t)
	s := newScenario(t, startMochi(t), "5")
	s.enqueueConcurrently(matrixReadings, 1)
	sim := startSimulator(t, "hang=24")
	powerOff := fmt.Sprintf("kill -TERM %d", sim.p.cmd.Process.Pid)
	r := s.flush(sim.path, "--power-on-cmd", "true", "--power-off-cmd", powerOff, "--boot-wait", "10ms")
	st := s.status()
	lw := st.LastWindow
	if lw == nil {
		t.Fatalf("no window summary stored; flush: %s", r)
	}
	if r.code != 1 || !slices.Contains(mqttSteps, lw.Step) || r.elapsed > faultyWindowDeadline {
		t.Errorf("a hung module must fail the window in the MQTT session within %v: %s", faultyWindowDeadline, r)
	}
	if lw.RadioOffError != "" {
		t.Errorf("the power switch did not take the module off: %s", lw.RadioOffError)
	}
	if !sim.p.wait(5 * time.Second) {
		t.Fatalf("the window ended without cutting the module's power (the simulator still runs): %s", r)
	}
	if sr := sim.p.result(); sr.code != 0 {
		t.Errorf("the simulator did not end as on a power cut: %s", sr)
	}
	t.Logf("hung window with a power switch: exit %d after %v: %s; %d of %d acknowledged, %d sent",
		r.code, r.elapsed.Round(time.Millisecond), lw.Error, lw.Acked, lw.Queued, lw.Sent)
	inFlight := s.stableDeliveries()
	if st.Depth != lw.Queued-int64(lw.Acked) {
		t.Errorf("queue depth %d, want %d queued - %d acknowledged", st.Depth, lw.Queued, lw.Acked)
	}
	s.cleanWindow()
	s.account(lw.Sent-lw.Acked, idSet(inFlight))
}
