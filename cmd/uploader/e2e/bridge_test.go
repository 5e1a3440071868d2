package e2e

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// bridgeStats matches the line `uploader bridge` prints when it stops.
var bridgeStats = regexp.MustCompile(`bridge: packs=(\d+) rejected=(\d+) republished=(\d+) duplicates=(\d+)`)

// TestBridgeKilledMidPack: a site window sends packs to mosquitto; the
// bridge republishes them; it is SIGKILLed in the middle of a pack and
// started again on the same state. The subscriber must see every reading
// on its own topic, duplicates only of the one chunk in flight at the
// kill, and the restarted bridge must skip what the state recorded.
func TestBridgeKilledMidPack(t *testing.T) {
	requireE2E(t)
	brk := startMosquitto(t)
	s := newScenario(t, brk, "5")
	const readings, chunk = 2000, 50
	ids := s.newIDs(readings)
	if r := runUploader(t, processTimeout, s.ndjsonInput(ids, 1), nil, s.enqueueArgs("--ndjson")...); r.code != 0 {
		t.Fatalf("enqueue: %s", r)
	}
	s.led.confirm(ids)

	state := filepath.Join(t.TempDir(), "bridge.db")
	bridgeID := fmt.Sprintf("e2e-bridge-%d", s.n)
	args := []string{"bridge", "--broker", brk.Addr(), "--subscribe", "uploader/" + s.clientID + "/pack",
		"--state", state, "--client-id", bridgeID, "--username", brokerUser, "--password-file", s.pwFile,
		"--chunk", strconv.Itoa(chunk), "--reply-timeout", replyTimeout}

	// The first bridge logs every reading it republishes (debug) into a
	// pipe this test stops reading after the first chunk of a pack is
	// recorded: the rest of a pack of hundreds of readings cannot be
	// logged, so it cannot be finished, before the kill.
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	first := exec.Command(uploaderBin, append(args, "--log-level", "debug")...)
	first.Stderr = pw
	first.Env = childEnv(nil)
	first.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := first.Start(); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	exited := make(chan struct{})
	go func() { _ = first.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = syscall.Kill(-first.Process.Pid, syscall.SIGKILL)
		<-exited
		pr.Close()
	})
	seen := make(chan string, 2)
	resume := make(chan struct{})
	var logged strings.Builder
	go func() {
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		subscribed := false
		for sc.Scan() {
			line := sc.Text()
			logged.WriteString(line + "\n")
			if !subscribed && strings.Contains(line, "bridge: subscribed") {
				subscribed = true
				seen <- line
			}
			if strings.Contains(line, "bridge: chunk recorded") {
				seen <- line
				<-resume // stop reading: the bridge blocks on its next lines
				break
			}
		}
		for sc.Scan() {
		}
		close(seen)
	}()
	waitLine := func(what string) string {
		t.Helper()
		select {
		case line, ok := <-seen:
			if !ok {
				t.Fatalf("the bridge ended before %s:\n%s", what, logged.String())
			}
			return line
		case <-time.After(processTimeout):
			t.Fatalf("no %s in %v", what, processTimeout)
		}
		return ""
	}
	waitLine("subscription")

	sim := startSimulator(t, "")
	r := s.flush(sim.path, "--pack", "deflate", "--pack-max-bytes", "262144")
	if r.code != 0 {
		t.Fatalf("packed window: %s", r)
	}
	line := waitLine("chunk recorded")
	_ = syscall.Kill(-first.Process.Pid, syscall.SIGKILL)
	<-exited
	close(resume)
	if strings.Contains(logged.String(), "bridge: pack republished") {
		t.Fatalf("a whole pack went out before the kill; the test meant to kill mid-pack:\n%s", logged.String())
	}
	t.Logf("killed after %s", line)

	second := startUploader(t, nil, nil, append(args, "--log-level", "info")...)
	s.account(chunk, nil)
	second.signal(syscall.SIGTERM)
	res := second.mustWait(t, processTimeout)
	s.checkNoSecret(res)
	m := bridgeStats.FindStringSubmatch(res.stdout)
	if res.code != 0 || m == nil {
		t.Fatalf("restarted bridge: %s", res)
	}
	dups, _ := strconv.Atoi(m[4])
	repub, _ := strconv.Atoi(m[3])
	rejected, _ := strconv.Atoi(m[2])
	t.Logf("restarted bridge: %s", strings.TrimSpace(m[0]))
	if dups < chunk || rejected != 0 {
		t.Errorf("restarted bridge skipped %d duplicates, rejected %d packs; want at least the recorded chunk of %d skipped, none rejected", dups, rejected, chunk)
	}
	if repub+dups < readings-chunk {
		t.Errorf("restarted bridge handled %d readings (%d republished, %d skipped); the killed one cannot have finished more than a chunk", repub+dups, repub, dups)
	}
	// mosquitto refused nothing: the refused-readings file, beside the
	// state by default, is there and empty.
	if fi, err := os.Stat(state + ".refused.ndjson"); err != nil || fi.Size() != 0 {
		t.Errorf("refused-readings file: %v, %v; want an empty file beside the state", fi, err)
	}
}
