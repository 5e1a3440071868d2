// Package simtest starts the SIM7000 simulator (uplink/modemsim) on a
// pseudo-terminal for a test, and stops it when the test ends.
//
// It is for tests only: import it from _test.go files and nowhere else;
// product packages must not import it. It is apart from uplink/testkit
// because it imports modemsim, and modemsim's own internal tests use
// testkit: one package would make an import cycle.
package simtest

import (
	"testing"

	"github.com/nbiot-uploader/uploader/uplink/modemsim"
)

// Start runs the simulator with cfg on a new pseudo-terminal and closes it
// at the end of the test. It fails the test, never skips it, when the
// terminal cannot be made: every machine that runs the suite has
// /dev/ptmx, so a missing one is a broken environment, not a reason to
// pass quietly.
func Start(t testing.TB, cfg modemsim.Config) *modemsim.Sim {
	t.Helper()
	sim, err := modemsim.Start(cfg)
	if err != nil {
		t.Fatalf("start the modem simulator on a pseudo-terminal: %v", err)
	}
	t.Cleanup(func() {
		if err := sim.Close(); err != nil {
			t.Errorf("close the modem simulator: %v", err)
		}
	})
	return sim
}

// StartFaults is Start for the fast profile with faults in the syntax of
// `uploader simulate --faults` (modemsim.ParseFaults); "" means none.
func StartFaults(t testing.TB, faults string) *modemsim.Sim {
	t.Helper()
	cfg := modemsim.Fast()
	if faults != "" {
		f, err := modemsim.ParseFaults(faults)
		if err != nil {
			t.Fatalf("simulator faults %q: %v", faults, err)
		}
		cfg.Faults = f
	}
	return Start(t, cfg)
}
