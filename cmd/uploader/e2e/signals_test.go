package e2e

import (
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nbiot-uploader/uploader/uplink/testkit"
)

// TestFlushSIGHUPMidWindow sends SIGHUP — what a manual `uploader flush`
// gets when its SSH session drops — while a slowed module is in the MQTT
// session. The window must end the way SIGTERM ends it: exit 1 (a window
// cut short is a failed window, as README documents), the summary stored,
// AT+CFUN=0 sent after the signal, depth = queued - acknowledged, and a
// clean window delivers the rest with nothing lost.
//
// In "output pipes closed" the reader of the flush's output is gone too
// (`uploader flush | tee log` over the dropped session): every later log
// line meets a broken pipe, which must not kill the process either.
func TestFlushSIGHUPMidWindow(t *testing.T) {
	requireE2E(t)
	for _, tc := range []struct {
		name        string
		closeOutput bool
	}{
		{"output kept", false},
		{"output pipes closed", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newScenario(t, startMochi(t), "3.1.1")
			s.enqueueConcurrently(150, 1)
			// At debug level the simulator logs every command line it
			// receives: that shows where the window is and what it sent.
			sim := startSimulatorLogging(t, "slow=100ms", "debug")
			args := s.windowArgs("flush", sim.path, s.brk.Addr())
			var flush *proc
			var closeOutput func()
			if tc.closeOutput {
				flush, closeOutput = startUploaderPiped(t, args...)
			} else {
				flush = startUploader(t, nil, nil, args...)
			}

			// Mid-window: the module has been asked for its third chunk (of
			// about five), so the broker holds some of the readings.
			deadline := time.Now().Add(30 * time.Second)
			for strings.Count(sim.p.stderr.String(), `line="AT+CIPSEND=`) < 3 {
				if flush.exited() || time.Now().After(deadline) {
					t.Fatalf("the window did not reach its third chunk: flush %v\nsimulator:\n%s", flush.exited(), sim.p.stderr.String())
				}
				time.Sleep(5 * time.Millisecond)
			}
			if closeOutput != nil {
				closeOutput()
			}
			simLogAtSignal := sim.p.stderr.Len()
			flush.signal(syscall.SIGHUP)
			r := flush.mustWait(t, faultyWindowDeadline)
			s.checkNoSecret(r)
			if r.code != 1 {
				t.Fatalf("flush after SIGHUP: want exit 1 (window ended early, cleanly), got %s", r)
			}
			if after := sim.p.stderr.Since(simLogAtSignal); !strings.Contains(after, `line="AT+CFUN=0"`) {
				t.Errorf("the module got no AT+CFUN=0 after SIGHUP (radio left on); its commands after the signal:\n%s", after)
			}

			st := s.status()
			if st.LastWindow == nil {
				t.Fatalf("the window SIGHUP ended stored no summary: %s", r)
			}
			lw := st.LastWindow
			t.Logf("window ended by SIGHUP: %s %q; %d of %d acknowledged, %d sent", lw.Outcome, lw.Error, lw.Acked, lw.Queued, lw.Sent)
			if lw.Outcome != "failed" || !strings.Contains(lw.Error, "context canceled") {
				t.Errorf("stored summary: outcome %q error %q, want a failed window naming the cancellation", lw.Outcome, lw.Error)
			}
			if lw.Acked >= int(lw.Queued) {
				t.Errorf("SIGHUP came after the window had everything acknowledged (%d of %d): not mid-window", lw.Acked, lw.Queued)
			}
			if st.Depth != lw.Queued-int64(lw.Acked) {
				t.Errorf("queue depth %d, want %d queued - %d acknowledged", st.Depth, lw.Queued, lw.Acked)
			}
			if lw.RadioOffError != "" {
				t.Errorf("radio off failed: %s", lw.RadioOffError)
			}
			sim.stopExpectRadioOff(t, time.Second)
			inFlight := s.stableDeliveries()
			if st.Depth > 0 {
				s.cleanWindow()
			}
			s.account(lw.Sent-lw.Acked, idSet(inFlight))
		})
	}
}

// startUploaderPiped starts the binary with stdout and stderr on pipes
// the test reads until closeOutput closes their read ends: from then on
// every write of the child meets a broken pipe (EPIPE, and SIGPIPE unless
// the child handles it).
func startUploaderPiped(t *testing.T, args ...string) (p *proc, closeOutput func()) {
	t.Helper()
	p = &proc{name: uploaderBin + " " + strings.Join(args, " "), done: make(chan struct{})}
	p.cmd = exec.Command(uploaderBin, args...)
	p.cmd.Env = childEnv(nil)
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var readEnds []*os.File
	copied := make(chan struct{}, 2)
	for _, out := range []struct {
		set func(*os.File)
		buf *testkit.SyncBuffer
	}{
		{func(f *os.File) { p.cmd.Stdout = f }, &p.stdout},
		{func(f *os.File) { p.cmd.Stderr = f }, &p.stderr},
	} {
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		out.set(w)
		readEnds = append(readEnds, r)
		t.Cleanup(func() { r.Close() })
		defer w.Close() // the child holds its own copy after Start
		go func() {
			_, _ = io.Copy(out.buf, r) // ends with an error once r is closed
			copied <- struct{}{}
		}()
	}
	p.start = time.Now()
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", p.name, err)
	}
	go func() {
		_ = p.cmd.Wait()
		p.end = time.Now()
		close(p.done)
	}()
	t.Cleanup(func() {
		if !p.exited() {
			p.signal(syscall.SIGKILL)
			p.wait(10 * time.Second)
		}
	})
	return p, func() {
		for _, r := range readEnds {
			r.Close()
		}
		for range readEnds {
			<-copied
		}
	}
}
