package testkit

import (
	"testing"
	"time"
)

// pollTick is how often Eventually re-checks a condition nothing signals.
const pollTick = 5 * time.Millisecond

// WaitUntil checks cond every few milliseconds until it holds, and reports
// whether it did within timeout. Use it for state that no fake or
// simulator signals (a process's radio flag, a file on disk); where a
// Notifier or a SyncBuffer exists, wait on that instead. The timeout is a
// safety net, not a measurement: make it generous (seconds).
func WaitUntil(timeout time.Duration, cond func() bool) bool {
	return PollEvery(pollTick, timeout, cond)
}

// PollEvery is WaitUntil with its own tick: coarser for a condition that
// is costly to check (one that runs a process), finer where a test races
// a process on purpose (fault injection at a precise moment).
func PollEvery(tick, timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	ticker := time.NewTicker(tick)
	defer ticker.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			return cond()
		}
		<-ticker.C
	}
	return true
}

// Eventually is WaitUntil that fails the test, saying what it waited for
// (format and args), when cond does not hold within timeout.
func Eventually(t testing.TB, timeout time.Duration, cond func() bool, format string, args ...any) {
	t.Helper()
	if !WaitUntil(timeout, cond) {
		t.Fatalf("after %v: "+format, append([]any{timeout}, args...)...)
	}
}

// Recv returns the next value from ch, failing the test with what (a
// description of the awaited event) if none comes within timeout.
func Recv[T any](t testing.TB, ch <-chan T, timeout time.Duration, what string) T {
	t.Helper()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case v := <-ch:
		return v
	case <-timer.C:
		t.Fatalf("no %s within %v", what, timeout)
		var zero T
		return zero
	}
}
