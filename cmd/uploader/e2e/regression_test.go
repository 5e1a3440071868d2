package e2e

import (
	"strings"
	"syscall"
	"testing"
	"time"
)

// Regression tests of product bugs this suite found.

// TestHungModuleKeepsWindowDeadline: a hung module answers nothing, and
// the window's teardown (AT+CIPCLOSE, AT+CFUN=0) must still end within the
// window timeout plus the one radio-off budget. This suite found the
// teardown taking 15 s + 10 s on budgets of their own (30 s with
// --window-timeout 4s).
func TestHungModuleKeepsWindowDeadline(t *testing.T) {
	requireE2E(t)
	s := newScenario(t, startMochi(t), "3.1.1")
	s.enqueueConcurrently(100, 1)
	sim := startSimulator(t, "hang=20")
	const windowTimeout = 4 * time.Second
	r := s.flush(sim.path, "--window-timeout", windowTimeout.String())
	if r.code != 1 {
		t.Errorf("flush with a hung module: %s", r)
	}
	if limit := windowTimeout + radioOffBudget + 3*time.Second; r.elapsed > limit {
		t.Errorf("the window took %v with --window-timeout %v; at most %v expected", r.elapsed.Round(time.Millisecond), windowTimeout, limit)
	}
	sim.stop(t)
}

// TestNoStaleAnswerAfterInterruptedWindow: SIGTERM interrupts the daemon
// while a slow module's answer is still on its way; neither the window's
// radio-off command nor the next process (`uploader modem at AT+CFUN?`,
// run at once) may take that late answer as its own. This suite found the
// interrupted AT+CSQ's "OK" taken as the answer to AT+CFUN=0, and `modem
// at` then printing "OK" without "+CFUN: ...".
func TestNoStaleAnswerAfterInterruptedWindow(t *testing.T) {
	requireE2E(t)
	s := newScenario(t, startMochi(t), "3.1.1")
	s.enqueueConcurrently(50, 1)
	sim := startSimulator(t, "slow=100ms")
	daemon := startUploader(t, nil, nil, s.windowArgs("run", sim.path, s.brk.Addr(), "--schedule", "@every 1s")...)
	if !daemon.waitStderr("msg=registered", 30*time.Second) {
		t.Fatalf("the daemon's window did not get registered: %s", daemon.stderr.String())
	}
	daemon.signal(syscall.SIGTERM)
	daemon.mustWait(t, faultyWindowDeadline)
	r := s.radioAnswer(sim.path) // at once: the late answers are still on their way
	if r.code != 0 || !strings.Contains(r.stdout, "+CFUN: ") {
		t.Errorf("AT+CFUN? right after an interrupted window answers without +CFUN: %s", r)
	}
	sim.stop(t)
}

// TestRadioOffAfterRebootMidSend: the module reboots between the "> "
// prompt of AT+CIPSEND and the payload (a brown-out in the transmit burst,
// the classic SIM7000 reset) and boots with the radio on; the window must
// still switch it off. This suite found the payload echoed by the rebooted
// module's command line, AT+CIPCLOSE=1 waiting out the whole 15 s radio-off
// budget and AT+CFUN=0 never sent (QoS 0, MQTT 3.1.1, reboot=24).
func TestRadioOffAfterRebootMidSend(t *testing.T) {
	requireE2E(t)
	s := newScenario(t, startMochi(t), "3.1.1")
	s.enqueueConcurrently(matrixReadings, 0)
	sim := startSimulator(t, "reboot=24")
	r := s.flush(sim.path)
	if r.code != 1 {
		t.Errorf("flush across a module reboot: %s", r)
	}
	st := s.status()
	if st.LastWindow == nil || st.LastWindow.RadioOffError != "" {
		t.Errorf("the window could not switch the radio off: %+v", st.LastWindow)
	}
	sim.stopExpectRadioOff(t, 500*time.Millisecond)
}
