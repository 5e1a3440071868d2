package queue

import (
	"bufio"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

const (
	powerCutEnvPath = "QUEUE_POWERCUT_CHILD_PATH"
	powerCutEnvSeed = "QUEUE_POWERCUT_CHILD_SEED"
	powerCutKills   = 200
)

// Ensure SIGKILL at random moments of enqueue/ack/compact never corrupts the file, never loses
// a record whose enqueue returned, and never brings back a record whose ack returned.
//
// The child is this test binary re-executed. It writes a line to stdout after each call
// returns successfully ("E seq=payload ..." or "A seq ..."), so every line the parent reads
// is a promise the queue made. A call can return and be killed before its line is written, so
// the child also announces each ack before making it ("P seq ..."): a record may only be
// missing if an ack for it was at least attempted.
func TestPowerCut(t *testing.T) {
	if path := os.Getenv(powerCutEnvPath); path != "" {
		runPowerCutChild(t, path)
		return
	}
	if testing.Short() {
		t.Skip("skipping power-cut test in -short mode")
	}
	path := filepath.Join(t.TempDir(), "q.db")
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	enqueued := map[uint64]string{} // reported enqueued: seq -> payload
	acked := map[uint64]bool{}      // reported acked
	attempted := map[uint64]bool{}  // an ack was announced, and may or may not have happened
	var maxReported uint64
	for kill := range powerCutKills {
		lines := runAndKillChild(t, path, kill, rng)
		for _, line := range lines {
			fields := strings.Fields(line)
			if len(fields) == 0 {
				continue
			}
			switch fields[0] {
			case "E":
				for _, f := range fields[1:] {
					seqText, payload, _ := strings.Cut(f, "=")
					seq, err := strconv.ParseUint(seqText, 10, 64)
					if err != nil {
						t.Fatalf("bad child line %q", line)
					}
					if _, dup := enqueued[seq]; dup {
						t.Fatalf("kill %d: sequence %d assigned twice", kill, seq)
					}
					if seq <= maxReported {
						t.Fatalf("kill %d: sequence %d after %d: not increasing", kill, seq, maxReported)
					}
					maxReported = seq
					enqueued[seq] = payload
				}
			case "P", "A":
				for _, f := range fields[1:] {
					seq, err := strconv.ParseUint(f, 10, 64)
					if err != nil {
						t.Fatalf("bad child line %q", line)
					}
					attempted[seq] = true
					if fields[0] == "A" {
						acked[seq] = true
					}
				}
			}
		}
		verifyAfterKill(t, path, kill, enqueued, attempted, acked)
	}
	t.Logf("%d kills: %d enqueues and %d acks reported", powerCutKills, len(enqueued), len(acked))
}

// runAndKillChild starts a child, waits for it to be ready, lets it run for a random moment,
// SIGKILLs it and returns the complete lines it reported.
func runAndKillChild(t *testing.T, path string, kill int, rng *rand.Rand) []string {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestPowerCut$", "-test.count=1")
	cmd.Env = append(os.Environ(), powerCutEnvPath+"="+path, powerCutEnvSeed+"="+strconv.Itoa(kill))
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan struct{})
	done := make(chan []string)
	go func() {
		r := bufio.NewReader(stdout)
		var lines []string
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				break // a line cut by the kill (no newline) was never a promise
			}
			if line == "R\n" {
				close(ready)
				continue
			}
			lines = append(lines, line)
		}
		_, _ = io.Copy(io.Discard, r)
		done <- lines
	}()
	select {
	case <-ready:
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatalf("kill %d: child never became ready", kill)
	}
	// A random point in the child's work to cut the power at: the sleep
	// is the test's randomised timing, not a wait for an event.
	time.Sleep(time.Duration(rng.IntN(25_000)) * time.Microsecond)
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait() // "signal: killed" is the expected outcome
	return <-done
}

func verifyAfterKill(t *testing.T, path string, kill int, enqueued map[uint64]string, attempted, acked map[uint64]bool) {
	t.Helper()
	q, err := Open(path, &Options{BusyTimeout: 5 * time.Second})
	if err != nil {
		t.Fatalf("kill %d: Open()=%v", kill, err)
	}
	defer q.Close()
	if err := q.Check(); err != nil {
		t.Fatalf("kill %d: Check()=%v", kill, err)
	}
	present := map[uint64]string{}
	var after uint64
	for {
		batch, err := q.Read(after, 500, 0)
		if err != nil {
			t.Fatalf("kill %d: Read()=%v", kill, err)
		}
		if len(batch) == 0 {
			break
		}
		for _, r := range batch {
			present[r.Seq] = string(r.Payload)
		}
		after = batch[len(batch)-1].Seq
	}
	for seq, payload := range enqueued {
		got, ok := present[seq]
		switch {
		case acked[seq] && ok:
			t.Fatalf("kill %d: acknowledged record %d reappeared", kill, seq)
		case !attempted[seq] && !ok:
			t.Fatalf("kill %d: record %d was reported enqueued and never acked, but is gone", kill, seq)
		case ok && got != payload:
			t.Fatalf("kill %d: record %d payload %q, want %q", kill, seq, got, payload)
		}
	}
}

// runPowerCutChild enqueues, acks and occasionally compacts until it is killed.
func runPowerCutChild(t *testing.T, path string) {
	seed, _ := strconv.ParseUint(os.Getenv(powerCutEnvSeed), 10, 64)
	rng := rand.New(rand.NewPCG(seed, 99))
	q, err := Open(path, &Options{BusyTimeout: 10 * time.Second})
	if err != nil {
		t.Fatalf("child Open()=%v", err)
	}
	report := func(s string) {
		// One write per line, unbuffered: once it returns, the parent can read the promise.
		if _, err := os.Stdout.WriteString(s + "\n"); err != nil {
			os.Exit(3)
		}
	}
	report("R")
	for n := 0; ; n++ {
		switch op := rng.IntN(100); {
		case op < 60:
			batch := make([]Record, 1+rng.IntN(20))
			for i := range batch {
				batch[i] = Record{Topic: "site/powercut", Payload: fmt.Appendf(nil, "k%d-n%d-i%d", seed, n, i), QoS: 1}
			}
			seqs, err := q.Enqueue(batch...)
			if err != nil {
				t.Fatalf("child Enqueue()=%v", err)
			}
			var b strings.Builder
			b.WriteString("E")
			for i, s := range seqs {
				fmt.Fprintf(&b, " %d=%s", s, batch[i].Payload)
			}
			report(b.String())
		case op < 95:
			recs, err := q.Read(0, 1+rng.IntN(30), 0)
			if err != nil {
				t.Fatalf("child Read()=%v", err)
			}
			var seqs []uint64
			for _, r := range recs {
				if rng.IntN(4) > 0 { // leave some behind, as a broker that refused some would
					seqs = append(seqs, r.Seq)
				}
			}
			var b strings.Builder
			for _, s := range seqs {
				fmt.Fprintf(&b, " %d", s)
			}
			report("P" + b.String())
			if err := q.Ack(seqs); err != nil {
				t.Fatalf("child Ack()=%v", err)
			}
			report("A" + b.String())
		default:
			if err := q.Compact(); err != nil {
				t.Fatalf("child Compact()=%v", err)
			}
		}
	}
}
