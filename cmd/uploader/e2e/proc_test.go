package e2e

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nbiot-uploader/uploader/uplink/testkit"
)

// proc is one child process of the suite. Each runs in its own process
// group, so a kill also reaches whatever it started (power commands), and
// t.Cleanup kills it if the test did not wait for it.
type proc struct {
	name   string
	cmd    *exec.Cmd
	stdout testkit.SyncBuffer
	stderr testkit.SyncBuffer
	start  time.Time
	done   chan struct{} // closed when the process has exited
	end    time.Time
}

// startProc starts program with args. stdin may be nil.
func startProc(t *testing.T, stdin io.Reader, env []string, program string, args ...string) *proc {
	t.Helper()
	p, err := launch(t, stdin, env, program, args...)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// launch is startProc for any goroutine: it reports instead of failing.
func launch(t *testing.T, stdin io.Reader, env []string, program string, args ...string) (*proc, error) {
	p := &proc{name: program + " " + strings.Join(args, " "), done: make(chan struct{})}
	p.cmd = exec.Command(program, args...)
	p.cmd.Stdin = stdin
	p.cmd.Stdout = &p.stdout
	p.cmd.Stderr = &p.stderr
	p.cmd.Env = childEnv(env)
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	p.start = time.Now()
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", p.name, err)
	}
	go func() {
		_ = p.cmd.Wait() // the exit status is read from ProcessState
		p.end = time.Now()
		close(p.done)
	}()
	t.Cleanup(func() {
		if p.exited() {
			return
		}
		p.signal(syscall.SIGKILL)
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			t.Errorf("%s: still running 10 s after SIGKILL", p.name)
		}
	})
	return p, nil
}

// startUploader starts the built binary.
func startUploader(t *testing.T, stdin io.Reader, env []string, args ...string) *proc {
	t.Helper()
	return startProc(t, stdin, env, uploaderBin, args...)
}

// childEnv is the test's environment without UPLOADER_* variables (a
// developer's settings must not change what a scenario does), plus extra.
// A race-enabled binary would sleep a second before every exit
// (GORACE atexit_sleep_ms defaults to 1000), which the suite's hundreds of
// processes cannot afford.
func childEnv(extra []string) []string {
	var env []string
	gorace := "atexit_sleep_ms=0"
	for _, kv := range os.Environ() {
		switch {
		case strings.HasPrefix(kv, "UPLOADER_"):
		case strings.HasPrefix(kv, "GORACE="):
			gorace = strings.TrimPrefix(kv, "GORACE=") + " " + gorace
		default:
			env = append(env, kv)
		}
	}
	env = append(env, "GORACE="+gorace)
	return append(env, extra...)
}

// waitOutput waits until cond holds on what p wrote to out (its stdout or
// stderr buffer), p exits, or timeout passes, and reports whether cond
// held. It wakes on each write and on the exit, never on a timer.
func (p *proc) waitOutput(out *testkit.SyncBuffer, timeout time.Duration, cond func(string) bool) bool {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		changed := out.Changed()
		if cond(out.String()) {
			return true
		}
		select {
		case <-changed:
		case <-p.done:
			return cond(out.String())
		case <-timer.C:
			return cond(out.String())
		}
	}
}

// waitStderr is waitOutput on p's stderr for the text want.
func (p *proc) waitStderr(want string, timeout time.Duration) bool {
	return p.waitOutput(&p.stderr, timeout, func(s string) bool { return strings.Contains(s, want) })
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// signal sends sig to the process group; a no-op once it has exited.
func (p *proc) signal(sig syscall.Signal) {
	if p.exited() {
		return
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, sig) // ESRCH: it exited meanwhile
}

// wait waits for the exit, at most timeout; false when it is still running.
func (p *proc) wait(timeout time.Duration) bool {
	select {
	case <-p.done:
		return true
	case <-time.After(timeout):
		return false
	}
}

// result is how a finished process ended.
type result struct {
	code    int // -1 when killed by a signal
	stdout  string
	stderr  string
	elapsed time.Duration
}

func (r result) String() string {
	return "exit " + strconv.Itoa(r.code) + " after " + r.elapsed.Round(time.Millisecond).String() +
		"\n--- stdout:\n" + r.stdout + "--- stderr:\n" + r.stderr
}

// mustWait waits for the process and fails the test when it outlives
// timeout (it is killed then).
func (p *proc) mustWait(t *testing.T, timeout time.Duration) result {
	t.Helper()
	r, err := p.finish(t, timeout)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// finish is mustWait for any goroutine: it reports instead of failing.
// A data race the binary's race detector reported fails the test.
func (p *proc) finish(t *testing.T, timeout time.Duration) (result, error) {
	if !p.wait(timeout) {
		p.signal(syscall.SIGKILL)
		p.wait(10 * time.Second)
		return result{}, fmt.Errorf("%s: still running after %v; killed\n--- stdout:\n%s--- stderr:\n%s",
			p.name, timeout, p.stdout.String(), p.stderr.String())
	}
	r := p.result()
	if strings.Contains(r.stderr, "WARNING: DATA RACE") {
		t.Errorf("%s: the race detector reported a data race: %s", p.name, r)
	}
	return r, nil
}

// result of an exited process.
func (p *proc) result() result {
	return result{code: p.cmd.ProcessState.ExitCode(), stdout: p.stdout.String(), stderr: p.stderr.String(), elapsed: p.end.Sub(p.start)}
}

// runUploader runs the binary to its end, at most timeout.
func runUploader(t *testing.T, timeout time.Duration, stdin string, env []string, args ...string) result {
	t.Helper()
	r, err := tryUploader(t, timeout, stdin, env, args...)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// tryUploader is runUploader for goroutines other than the test's own,
// where t.Fatal is not allowed.
func tryUploader(t *testing.T, timeout time.Duration, stdin string, env []string, args ...string) (result, error) {
	var in io.Reader
	if stdin != "" {
		in = strings.NewReader(stdin)
	}
	p, err := launch(t, in, env, uploaderBin, args...)
	if err != nil {
		return result{}, err
	}
	return p.finish(t, timeout)
}
