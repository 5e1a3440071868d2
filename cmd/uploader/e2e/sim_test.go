package e2e

import (
	"encoding/json"
	"strings"
	"syscall"
	"testing"
	"time"
)

// simulator is one `uploader simulate` process: a SIM7000 on a
// pseudo-terminal, in the fast profile.
type simulator struct {
	p    *proc
	path string // the pseudo-terminal to pass as --device
}

// simAccounting is the part of the simulator's exit report the suite reads.
type simAccounting struct {
	RadioOnSeconds float64 `json:"radio_on_seconds"`
	ElapsedSeconds float64 `json:"elapsed_seconds"`
	RadioOnPeriods int     `json:"radio_on_periods"`
	ATCommands     int     `json:"at_commands"`
	CIPSENDCalls   int     `json:"cipsend_calls"`
	TCPConnections int     `json:"tcp_connections"`
	Reboots        int     `json:"reboots"`
	MQTTBytesUp    int64   `json:"mqtt_bytes_up"`
	MQTTBytesDown  int64   `json:"mqtt_bytes_down"`
	LostBytesUp    int64   `json:"lost_bytes_up"`
}

// startSimulator starts `uploader simulate` with the given fault spec ("" =
// none) and waits for the device path, its first line of output.
func startSimulator(t *testing.T, faults string) *simulator {
	t.Helper()
	return startSimulatorLogging(t, faults, "warn")
}

// startSimulatorLogging is startSimulator with the simulator's log level;
// at debug it logs every AT command line it receives.
func startSimulatorLogging(t *testing.T, faults, level string) *simulator {
	t.Helper()
	args := []string{"simulate", "--profile", "fast", "--log-level", level}
	if faults != "" {
		args = append(args, "--faults", faults)
	}
	p := startUploader(t, nil, nil, args...)
	if !p.waitOutput(&p.stdout, 15*time.Second, func(s string) bool { return strings.Contains(s, "\n") }) {
		if p.exited() {
			t.Fatalf("simulate exited before printing its device: %s", p.result())
		}
		t.Fatalf("simulate printed no device path in 15 s; stderr:\n%s", p.stderr.String())
	}
	line, _, _ := strings.Cut(p.stdout.String(), "\n")
	if !strings.HasPrefix(line, "/dev/") {
		t.Fatalf("simulate printed %q where its device path belongs", line)
	}
	return &simulator{p: p, path: line}
}

// stop interrupts the simulator and returns the accounting it prints at
// its exit.
func (s *simulator) stop(t *testing.T) simAccounting {
	t.Helper()
	s.p.signal(syscall.SIGINT)
	r := s.p.mustWait(t, 15*time.Second)
	if r.code != 0 {
		t.Fatalf("simulate: %s", r)
	}
	_, report, _ := strings.Cut(r.stdout, "\n")
	var acc simAccounting
	if err := json.Unmarshal([]byte(report), &acc); err != nil {
		t.Fatalf("simulate's exit report: %v\n%s", err, r.stdout)
	}
	return acc
}

// stopExpectRadioOff waits quiet, stops the simulator and fails unless its
// accounting shows the radio off for that whole time. The simulated module
// boots with the radio on, so its off time is elapsed - radio on. Unlike
// asking AT+CFUN?, this works whatever state the window left the module's
// command line in.
func (s *simulator) stopExpectRadioOff(t *testing.T, quiet time.Duration) simAccounting {
	t.Helper()
	// The interval is the measurement, not a wait for an event: the
	// simulator's accounting must show the radio off for all of it.
	time.Sleep(quiet)
	acc := s.stop(t)
	if off := acc.ElapsedSeconds - acc.RadioOnSeconds; off < (quiet - quiet/5).Seconds() {
		t.Errorf("the radio was on after the window: off %.2f s of the last %.2f s (%d radio-on periods)",
			off, quiet.Seconds(), acc.RadioOnPeriods)
	}
	return acc
}
