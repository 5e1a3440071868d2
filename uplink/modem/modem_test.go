package modem

import (
	"errors"
	"testing"
	"time"
)

// Ensure Close is idempotent, wakes a command waiting for its answer, and
// makes every later call fail with ErrClosed.
func TestModemCloseTwice(t *testing.T) {
	m, f := newScripted(t, Options{}, step{cmd: "AT+CIICR", reply: ""})
	errc := make(chan error, 1)
	go func() {
		_, err := m.Exec(t.Context(), "AT+CIICR", time.Minute)
		errc <- err
	}()
	// The module has the command (and answers nothing): Exec is waiting.
	if got := f.waitCmds(1); len(got) != 1 {
		t.Fatalf("module got %q, want AT+CIICR", got)
	}
	if err := m.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if err := m.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	select {
	case err := <-errc:
		if !errors.Is(err, ErrClosed) {
			t.Errorf("pending command err = %v, want ErrClosed", err)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("pending command not woken by Close")
	}
	if _, err := m.Exec(t.Context(), "AT", 0); !errors.Is(err, ErrClosed) {
		t.Errorf("command after Close: %v, want ErrClosed", err)
	}
}

// Ensure a port that fails (unplugged USB adapter) ends the waiting
// command at once, not after its timeout.
func TestPortFailure(t *testing.T) {
	f := startFake(t, func(fm *fakeModem) error {
		if _, err := fm.io.readCommand(); err != nil {
			return err
		}
		return fm.io.out.CloseWithError(errors.New("device unplugged"))
	})
	m := New(f.port, Options{})
	defer m.Close()
	start := time.Now()
	_, err := m.Exec(t.Context(), "AT+CIICR", time.Minute)
	if !errors.Is(err, ErrClosed) {
		t.Errorf("err = %v, want ErrClosed", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %v", d)
	}
}

// Ensure a late answer to a command that timed out is not taken as the
// answer to the next command.
func TestStaleAnswerDiscarded(t *testing.T) {
	m, _ := newScripted(t, Options{},
		step{cmd: "AT+CGATT?", reply: "\r\n+CGATT: 1\r\n"},
		step{cmd: "AT+CSQ", reply: "\r\n+CSQ: 7,0\r\n\r\nOK\r\n"},
	)
	if _, err := m.Exec(t.Context(), "AT+CGATT?", 100*time.Millisecond); !errors.Is(err, ErrTimeout) {
		t.Fatalf("err = %v, want ErrTimeout", err)
	}
	// The rest of the CGATT answer arrives while nobody waits.
	m.onEvent(event{kind: evLine, line: "OK"})
	rssi, ber, err := m.SignalQuality(t.Context())
	if err != nil || rssi != 7 || ber != 0 {
		t.Errorf("SignalQuality = %d, %d, %v", rssi, ber, err)
	}
	if st := m.Stats(); st.LateAnswers != 1 {
		t.Errorf("stale OK not counted as a late answer: %+v", st)
	}
}
