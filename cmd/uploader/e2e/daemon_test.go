package e2e

import (
	"fmt"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nbiot-uploader/uploader/uplink/testkit"
)

// TestDaemon runs `uploader run` on a one-second schedule (given as
// UPLOADER_SCHEDULE) while several sensor scripts enqueue: everything they
// stored arrives, exactly once, and SIGTERM stops the daemon with exit 0
// and the radio off.
func TestDaemon(t *testing.T) {
	requireE2E(t)
	for _, bc := range bothBrokers(t) {
		t.Run(bc.name, func(t *testing.T) {
			t.Parallel()
			if bc.brk == nil {
				t.Skip(bc.skip)
			}
			version := "5"
			if bc.name == "mosquitto" {
				version = "3.1.1"
			}
			s := newScenario(t, bc.brk, version)
			sim := startSimulator(t, "")
			// The schedule comes from the environment, as a service unit
			// would set it.
			daemon := startUploader(t, nil, []string{"UPLOADER_SCHEDULE=@every 1s"}, s.windowArgs("run", sim.path, s.brk.Addr())...)

			var wg sync.WaitGroup
			for producer := range 3 {
				wg.Go(func() {
					for call := range 6 {
						ids := s.newIDs(5)
						r, err := tryUploader(t, processTimeout, linesInput(ids), nil,
							s.enqueueArgs("--topic", fmt.Sprintf("%s/p%d", s.prefix, producer), "--qos", fmt.Sprint(call%2), "--lines")...)
						if err != nil || r.code != 0 {
							t.Errorf("enqueue while the daemon runs: %v %s", err, r)
							continue
						}
						s.led.confirm(ids)
						// The sensor's pace, not a wait: about 2 s in all, so
						// readings arrive across several windows.
						time.Sleep(time.Duration(200+50*call) * time.Millisecond)
					}
				})
			}
			wg.Wait()
			// Stop once the daemon has emptied the queue: readings the broker
			// already routed may still wait for their acknowledgement.
			// Each check of the depth runs `uploader status`: check on a
			// coarse tick, and only once everything was routed.
			testkit.PollEvery(100*time.Millisecond, 20*time.Second, func() bool {
				return daemon.exited() || (s.led.allConfirmedIn(s.watch.Deliveries()) && s.status().Depth == 0)
			})
			daemon.signal(syscall.SIGTERM)
			r := daemon.mustWait(t, faultyWindowDeadline)
			s.checkNoSecret(r)
			done, failed := strings.Count(r.stderr, `msg="window done"`), strings.Count(r.stderr, `msg="window failed"`)
			t.Logf("daemon ran %d windows (%d failed)", done+failed, failed)
			if r.code != 0 || done < 2 {
				t.Errorf("the daemon must run windows while readings arrive and exit 0 on SIGTERM: %s", r)
			}
			s.checkRadioOff(sim.path)
			sim.stop(t)
			if st := s.status(); st.Depth != 0 {
				t.Errorf("queue depth %d after the daemon delivered everything", st.Depth)
			}
			s.account(0, nil)
		})
	}
}

// TestDaemonStopsMidWindow sends SIGTERM to `uploader run` while a window
// is sending (a slow module stretches it): the daemon ends the window,
// switches the radio off and exits 0 in time; what it did not get
// acknowledged stays queued and a clean window delivers it.
func TestDaemonStopsMidWindow(t *testing.T) {
	requireE2E(t)
	s := newScenario(t, startMochi(t), "3.1.1")
	s.enqueueConcurrently(150, 1)
	sim := startSimulator(t, "slow=100ms")
	daemon := startUploader(t, nil, nil, s.windowArgs("run", sim.path, s.brk.Addr(), "--schedule", "@every 1s")...)
	if !daemon.waitStderr(`msg="tcp connected"`, 30*time.Second) {
		t.Fatalf("the daemon's window did not connect: %s", daemon.stderr.String())
	}
	// Into the MQTT session: CONNECT and the first chunks are through once
	// the broker has routed a reading.
	if !testkit.WaitUntil(30*time.Second, func() bool { return daemon.exited() || len(s.watch.Deliveries()) > 0 }) || daemon.exited() {
		t.Fatalf("the daemon's window delivered nothing: %s", daemon.stderr.String())
	}
	sigAt := time.Now()
	daemon.signal(syscall.SIGTERM)
	r := daemon.mustWait(t, faultyWindowDeadline)
	if r.code != 0 {
		t.Errorf("SIGTERM during a window must still exit 0: %s", r)
	}
	t.Logf("the daemon stopped %v after SIGTERM", daemon.end.Sub(sigAt).Round(time.Millisecond))
	st := s.status()
	if st.LastWindow == nil {
		t.Fatalf("the interrupted window stored no summary: %s", r)
	}
	t.Logf("interrupted window: %s %s; %d of %d acknowledged, %d sent", st.LastWindow.Outcome, st.LastWindow.Error,
		st.LastWindow.Acked, st.LastWindow.Queued, st.LastWindow.Sent)
	if st.Depth != st.LastWindow.Queued-int64(st.LastWindow.Acked) {
		t.Errorf("queue depth %d, want %d queued - %d acknowledged", st.Depth, st.LastWindow.Queued, st.LastWindow.Acked)
	}
	// The radio state is read from the simulator's accounting rather than
	// with AT+CFUN?: right after an interrupted window the slow module's
	// late answers are still on their way (TestNoStaleAnswerAfterInterruptedWindow
	// covers that path).
	sim.stopExpectRadioOff(t, time.Second)
	inFlight := s.stableDeliveries()
	if st.Depth > 0 {
		s.cleanWindow()
	}
	s.account(st.LastWindow.Sent-st.LastWindow.Acked, idSet(inFlight))
}
