package e2e

import (
	"strings"
	"syscall"
	"testing"
	"time"
)

// Tests of product bugs found by this suite and not fixed yet. Each skips
// itself with a description; remove the t.Skip once the bug is fixed.

// TestKnownBugHungModuleOverrunsWindowDeadline: with a hung module the
// window's teardown waits 15 s for AT+CIPCLOSE=1 (cipcloseTimeout in
// uplink/modem/options.go) and then 10 s for AT+CFUN=0, on budgets of
// their own, so `flush --window-timeout 4s` takes about 30 s; the
// documented bound is the window timeout plus the 15 s radio-off budget
// (uplink/window.go radioOffBudget).
func TestKnownBugHungModuleOverrunsWindowDeadline(t *testing.T) {
	requireE2E(t)
	t.Skip("known bug: a hung module stretches the window ~26 s past --window-timeout (CIPCLOSE 15 s + CFUN=0 10 s teardown, beyond radioOffBudget)")
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

// TestKnownBugStaleAnswerAfterInterruptedWindow: when SIGTERM interrupts a
// command whose answer is still on its way (a slow module), the window
// sends AT+CFUN=0 at once and takes the interrupted command's late "OK" as
// its answer, exiting before the module confirmed the radio off. The next
// process (`uploader modem at AT+CFUN?`) opens the port before the rest of
// the late answers arrive, so every answer it reads belongs to the command
// before: it prints "OK" without "+CFUN: ...". Seen with the daemon
// interrupted during AT+CSQ (uplink/modem: an abandoned command's final
// result is not drained before the next command; Sync only discards what
// is buffered at open).
func TestKnownBugStaleAnswerAfterInterruptedWindow(t *testing.T) {
	requireE2E(t)
	t.Skip("known bug: an interrupted AT command's late answer is taken as the answer of the next command (radio-off OK, then `modem at` prints the previous command's answer)")
	s := newScenario(t, startMochi(t), "3.1.1")
	s.enqueueConcurrently(50, 1)
	sim := startSimulator(t, "slow=100ms")
	daemon := startUploader(t, nil, nil, s.windowArgs("run", sim.path, s.brk.Addr(), "--schedule", "@every 1s")...)
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(daemon.stderr.String(), "msg=registered") {
		if daemon.exited() || time.Now().After(deadline) {
			t.Fatalf("the daemon's window did not get registered: %s", daemon.stderr.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
	daemon.signal(syscall.SIGTERM)
	daemon.mustWait(t, faultyWindowDeadline)
	r := s.radioAnswer(sim.path) // at once: the late answers are still on their way
	if r.code != 0 || !strings.Contains(r.stdout, "+CFUN: ") {
		t.Errorf("AT+CFUN? right after an interrupted window answers without +CFUN: %s", r)
	}
	sim.stop(t)
}
