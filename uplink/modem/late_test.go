package modem

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

const cfunQueryAnswer = "\r\n+CFUN: 0\r\n\r\nOK\r\n"

// Ensure the late final of an abandoned command is discarded instead of
// being taken as the answer of the next one, whichever way the command was
// abandoned and whatever its final looks like.
func TestLateAnswerNotTakenByNextCommand(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		steps   []step
		abandon func(ctx context.Context, m *Modem) error
		cancel  time.Duration // the caller's context ends after this; 0: never
		wantErr error
	}{
		{
			name:  "caller cancels, late OK",
			steps: []step{{cmd: "AT+CSQ", delay: 150 * time.Millisecond, reply: "\r\n+CSQ: 20,99\r\n\r\nOK\r\n"}},
			abandon: func(ctx context.Context, m *Modem) error {
				_, _, err := m.SignalQuality(ctx)
				return err
			},
			cancel:  30 * time.Millisecond,
			wantErr: context.Canceled,
		},
		{
			name:  "own timeout, late error",
			steps: []step{{cmd: "AT+CGATT?", delay: 150 * time.Millisecond, reply: "\r\n+CME ERROR: SIM busy\r\n"}},
			abandon: func(ctx context.Context, m *Modem) error {
				_, err := m.Exec(ctx, "AT+CGATT?", 40*time.Millisecond)
				return err
			},
			wantErr: ErrTimeout,
		},
		{
			name: "caller cancels AT+CIPSTART between OK and CONNECT OK",
			steps: []step{{cmd: dialOK, reply: "\r\nOK\r\n",
				afterDelay: 150 * time.Millisecond, after: "\r\nCONNECT OK\r\n"}},
			abandon: func(ctx context.Context, m *Modem) error {
				_, err := m.Dial(ctx, "127.0.0.1", 1883)
				return err
			},
			cancel:  50 * time.Millisecond,
			wantErr: context.Canceled,
		},
		{
			name:  "echo and information line, then a late OK",
			steps: []step{{cmd: "AT+COPS?", reply: "AT+COPS?\r\r\n+COPS: 0\r\n", afterDelay: 150 * time.Millisecond, after: "\r\nOK\r\n"}},
			abandon: func(ctx context.Context, m *Modem) error {
				_, err := m.Exec(ctx, "AT+COPS?", 60*time.Millisecond)
				return err
			},
			wantErr: ErrTimeout,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			steps := append(slices.Clone(tt.steps), step{cmd: "AT+CFUN?", reply: cfunQueryAnswer})
			m, _ := newScripted(t, Options{}, steps...)
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			if tt.cancel > 0 {
				time.AfterFunc(tt.cancel, cancel)
			}
			if err := tt.abandon(ctx, m); !errors.Is(err, tt.wantErr) {
				t.Fatalf("abandoned command: err = %v, want %v", err, tt.wantErr)
			}
			resp, err := m.Exec(t.Context(), "AT+CFUN?", time.Second)
			if err != nil || !slices.Contains(resp.Lines, "+CFUN: 0") || resp.Final != "OK" {
				t.Fatalf("next command got %+v, %v; want its own +CFUN: 0 and OK", resp, err)
			}
			if got := m.Stats().LateAnswers; got != 1 {
				t.Errorf("Stats.LateAnswers = %d, want 1", got)
			}
		})
	}
}

// Ensure the wait for a late answer that never comes is bounded by the
// grace and by the next caller's context.
func TestLateAnswerWaitIsBounded(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		ctx      time.Duration // the next command's context
		wantErr  error
		maxTotal time.Duration
	}{
		{"grace runs out", 10 * time.Second, nil, lateGrace + time.Second},
		// Less than the whole grace: the wait ended with the context.
		{"next caller's context ends first", 100 * time.Millisecond, ErrTimeout, lateGrace},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			m, f := newScripted(t, Options{},
				// Echoed, so the module is alive, but the final never comes.
				step{cmd: "AT+COPS?", reply: "AT+COPS?\r\r\n"},
				step{cmd: "AT+CFUN?", reply: cfunQueryAnswer},
			)
			ctx, cancel := context.WithCancel(t.Context())
			time.AfterFunc(20*time.Millisecond, cancel)
			if _, err := m.Exec(ctx, "AT+COPS?", 5*time.Second); !errors.Is(err, context.Canceled) {
				t.Fatalf("abandoned command: err = %v", err)
			}
			start := time.Now()
			next, cancelNext := context.WithTimeout(t.Context(), tt.ctx)
			defer cancelNext()
			resp, err := m.Exec(next, "AT+CFUN?", time.Second)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("next command: %+v, %v; want %v", resp, err, tt.wantErr)
			}
			if d := time.Since(start); d > tt.maxTotal {
				t.Errorf("next command took %v, want at most %v", d, tt.maxTotal)
			}
			sent := slices.Contains(f.allCmds(t, m), "AT+CFUN?")
			if sent != (tt.wantErr == nil) {
				t.Errorf("AT+CFUN? sent = %v with err %v", sent, err)
			}
		})
	}
}

// laggingModem answers every command correctly, in order, gap after the
// previous answer, but first still owes the given answers to commands an
// earlier process sent: the slow module of the known bug.
func laggingModem(gap time.Duration, owed ...string) func(f *fakeModem) error {
	return func(f *fakeModem) error {
		answers := make(chan string, 64)
		for _, a := range owed {
			answers <- a
		}
		writerDone := make(chan error, 1)
		go func() {
			for a := range answers {
				time.Sleep(gap) // the module's pace is what the test is about
				if err := f.io.send(a); err != nil {
					writerDone <- err
					return
				}
			}
			writerDone <- nil
		}()
		defer func() {
			close(answers)
			<-writerDone //nolint:errcheck // a failed send shows as the command left unanswered
		}()
		for {
			cmd, err := f.io.readCommand()
			if err != nil {
				return err
			}
			f.record(cmd)
			switch {
			case cmd == "AT+CMEE?":
				answers <- "\r\n+CMEE: 2\r\n\r\nOK\r\n"
			case cmd == "AT+CFUN?":
				answers <- cfunQueryAnswer
			case strings.HasPrefix(cmd, "AT"):
				answers <- "\r\nOK\r\n"
			}
		}
	}
}

// Ensure a new process's Sync does not trust answers an earlier process
// left on their way, so that the first command after it gets its own.
func TestSyncDiscardsStaleAnswers(t *testing.T) {
	t.Parallel()
	// Answers 100 ms apart are still arriving while Sync waits for a quiet
	// line; 250 ms apart they are not, and the AT+CMEE? check finds them.
	tests := []struct {
		name  string
		gap   time.Duration
		owed  []string
		short bool // also run with -short
	}{
		{"a query and a radio-off", 100 * time.Millisecond, []string{"\r\n+CSQ: 20,99\r\n\r\nOK\r\n", "\r\nOK\r\n"}, true},
		{"several with errors", 100 * time.Millisecond, []string{"\r\nOK\r\n", "\r\nERROR\r\n", "\r\nSHUT OK\r\n", "\r\nOK\r\n"}, false},
		{"one OK, gaps longer than the quiet wait", 250 * time.Millisecond, []string{"\r\nOK\r\n"}, true},
		{"an error, gaps longer than the quiet wait", 250 * time.Millisecond, []string{"\r\n+CME ERROR: operation not allowed\r\n"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if testing.Short() && !tt.short {
				t.Skip("the -short run keeps one case per gap")
			}
			t.Parallel()
			f := startFake(t, laggingModem(tt.gap, tt.owed...))
			m := New(f.port, Options{})
			defer m.Close()
			if err := m.Sync(t.Context()); err != nil {
				t.Fatalf("Sync: %v", err)
			}
			resp, err := m.Exec(t.Context(), "AT+CFUN?", 2*time.Second)
			if err != nil || !slices.Contains(resp.Lines, "+CFUN: 0") {
				t.Fatalf("AT+CFUN? after Sync = %+v, %v; want +CFUN: 0", resp, err)
			}
			if got := m.Stats().LateAnswers; got == 0 {
				t.Error("Stats.LateAnswers = 0, want the stale answers counted")
			}
		})
	}
}

// Ensure a module that stopped answering does not eat the teardown
// budget: socket traffic fails at once, CloseContext spends one short
// CIPCLOSE probe and no CIPSHUT, and every command returns when the
// caller's context ends.
func TestCloseHungModuleFailsFast(t *testing.T) {
	t.Parallel()
	c, f := dialScripted(t, Options{QuickSend: true}) // silent from now on
	m := c.m
	// Long enough a silence to count as hung (stallEvidence).
	if err := c.SetWriteDeadline(time.Now().Add(stallEvidence + 100*time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write([]byte("abcd")); !errors.Is(err, ErrTimeout) {
		t.Fatalf("Write to a hung module: %v, want ErrTimeout", err)
	}
	start := time.Now()
	if _, err := c.Read(make([]byte, 8)); !errors.Is(err, ErrTimeout) {
		t.Errorf("Read from a hung module: %v, want ErrTimeout", err)
	}
	// Polling a hung module would take a command timeout at least.
	if d := time.Since(start); d > stallEvidence {
		t.Errorf("Read took %v on a hung module, want an immediate failure", d)
	}

	budget, cancel := context.WithTimeout(t.Context(), 15*time.Second)
	defer cancel()
	start = time.Now()
	err := c.CloseContext(budget)
	if !errors.Is(err, ErrTimeout) {
		t.Errorf("CloseContext = %v, want ErrTimeout", err)
	}
	// One probe, not CIPCLOSE's 15 s, and no grace for late answers.
	if d, limit := time.Since(start), hungProbeTimeout+5*time.Second; d > limit {
		t.Errorf("CloseContext took %v on a hung module, want at most %v", d, limit)
	}
	cmds := f.waitCmds(5)
	if !slices.Contains(cmds, "AT+CIPCLOSE=1") || slices.Contains(cmds, "AT+CIPSHUT") ||
		slices.Contains(cmds, "AT+CIPRXGET=4") {
		t.Errorf("module got %q: want a CIPCLOSE probe, no CIPSHUT and no CIPRXGET", cmds)
	}

	off, cancelOff := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancelOff()
	start = time.Now()
	if err := m.SetFunctionality(off, 0); !errors.Is(err, ErrTimeout) {
		t.Errorf("CFUN=0 on a hung module: %v, want ErrTimeout", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("CFUN=0 took %v with a 200 ms context", d)
	}
	expired, cancelExpired := context.WithTimeout(t.Context(), time.Millisecond)
	defer cancelExpired()
	<-expired.Done()
	before := len(f.cmds())
	if err := m.PowerDown(expired); !errors.Is(err, ErrTimeout) {
		t.Errorf("PowerDown with an ended context: %v, want ErrTimeout", err)
	}
	if got := f.cmds(); len(got) != before {
		t.Errorf("a command went out with an ended context: %q", got[before:])
	}
}

// Ensure a module that is merely slow to close still gets the full
// CIPCLOSE and its CIPSHUT: the fast path needs total silence.
func TestCloseSlowModuleNotTakenAsHung(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for a CIPCLOSE answered after 1.2 s")
	}
	t.Parallel()
	c, f := dialScripted(t, Options{},
		step{cmd: "AT+CIPCLOSE=1", delay: hungProbeTimeout + 200*time.Millisecond, reply: "\r\nCLOSE OK\r\n"},
		step{cmd: "AT+CIPSHUT", reply: "\r\nSHUT OK\r\n"},
	)
	if err := c.CloseContext(t.Context()); err != nil {
		t.Fatalf("CloseContext: %v", err)
	}
	if cmds := f.waitCmds(4); !slices.Contains(cmds, "AT+CIPSHUT") {
		t.Errorf("module got %q, want CIPSHUT after the slow CIPCLOSE", cmds)
	}
}

// Ensure a reboot between the CIPSEND prompt and its answer does not leave
// the payload as a partial command line that swallows the teardown's
// commands.
func TestRebootDuringSendClearsCommandLine(t *testing.T) {
	c, f := dialScripted(t, Options{QuickSend: true},
		// The module restarts after the prompt: the payload becomes the
		// start of a command line of the fresh module (echo on again).
		step{cmd: "AT+CIPSEND=4", reply: "\r\n> \r\nRDY\r\n\r\n+CFUN: 1\r\n"},
		step{cmd: "abcd", reply: "abcd\r"},
		step{cmd: "AT", reply: "AT\r\r\nOK\r\n"},
		step{cmd: "AT+CIPCLOSE=1", reply: "AT+CIPCLOSE=1\r\r\nERROR\r\n"},
		step{cmd: "AT+CIPSHUT", reply: "AT+CIPSHUT\r\r\nSHUT OK\r\n"},
		step{cmd: "AT+CFUN=0", reply: "AT+CFUN=0\r\r\nOK\r\n"},
	)
	if _, err := c.Write([]byte("abcd")); !errors.Is(err, ErrRebooted) {
		t.Fatalf("Write across a reboot: %v, want ErrRebooted", err)
	}
	if err := c.Close(); err != nil {
		t.Errorf("Close after a reboot: %v", err)
	}
	if err := c.m.SetFunctionality(t.Context(), 0); err != nil {
		t.Errorf("CFUN=0 after a reboot: %v", err)
	}
	want := []string{dialOK, "AT+CIPSEND?", "AT+CIPSEND=4", "abcd", "AT", "AT+CIPCLOSE=1", "AT+CIPSHUT", "AT+CFUN=0"}
	if got := f.waitCmds(len(want)); !slices.Equal(got, want) {
		t.Errorf("module got %q, want %q", got, want)
	}
}

// Ensure a module that hangs right after taking a quick-send payload is
// given up on once silent for stallEvidence, not after the whole 10 s
// DATA ACCEPT timeout, and that one that talks meanwhile gets the rest.
func TestQuickSendAcceptOnHungModule(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for a 2 s silence")
	}
	t.Parallel()
	tests := []struct {
		name    string
		after   string // what the module says after the payload
		delay   time.Duration
		wantErr error
	}{
		{"silent", "", 0, ErrTimeout},
		{"a URC, then a late DATA ACCEPT", "\r\n+CIPRXGET: 1\r\n", stallEvidence + 300*time.Millisecond, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			steps := []step{{cmd: "AT+CIPSEND=4", reply: "\r\n> ", data: 4, after: tt.after}}
			if tt.wantErr == nil {
				steps[0].after += "\r\n"
				steps = append(steps, step{cmd: "*"})
			}
			c, f := dialScripted(t, Options{QuickSend: true}, steps...)
			if tt.wantErr == nil {
				go func() {
					time.Sleep(tt.delay) // a late DATA ACCEPT, as the test describes
					_ = f.io.send("\r\nDATA ACCEPT:4\r\n")
				}()
			}
			start := time.Now()
			_, err := c.Write([]byte("abcd"))
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Write = %v, want %v", err, tt.wantErr)
			}
			// The DATA ACCEPT timeout is 10 s; stallEvidence is 2 s.
			if d := time.Since(start); tt.wantErr != nil && d > stallEvidence+5*time.Second {
				t.Errorf("Write took %v on a module silent after the payload", d)
			}
		})
	}
}
