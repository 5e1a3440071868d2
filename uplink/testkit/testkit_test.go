package testkit

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// Ensure WaitFor returns once another goroutine writes the awaited text,
// woken by the write, and that Since and Len see the same bytes.
func TestSyncBufferWaitFor(t *testing.T) {
	var b SyncBuffer
	fmt.Fprint(&b, "boot\n")
	off := b.Len()
	release := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		<-release
		for i := range 50 {
			fmt.Fprintf(&b, "line %d\n", i)
		}
		fmt.Fprint(&b, "window done\n")
	}()
	if b.WaitFor("window done", 0) {
		t.Fatal("WaitFor found text nobody wrote")
	}
	close(release)
	if !b.WaitFor("window done", 10*time.Second) {
		t.Fatalf("WaitFor missed the line; buffer:\n%s", b.String())
	}
	wg.Wait()
	if got := b.Since(off); !strings.HasPrefix(got, "line 0\n") || strings.Contains(got, "boot") {
		t.Errorf("Since(%d) = %q", off, got)
	}
	if b.WaitForSince(off, "boot", 0) {
		t.Error("WaitForSince saw text before its offset")
	}
	if got := b.Since(1 << 20); got != "" {
		t.Errorf("Since past the end = %q", got)
	}
	changed := b.Changed()
	select {
	case <-changed:
		t.Error("Changed closed before a write")
	default:
	}
	fmt.Fprint(&b, "x")
	Recv(t, changed, 10*time.Second, "close of Changed after a write")
}

// Ensure a wait that is never satisfied ends at its deadline with false.
func TestWaitsTimeOut(t *testing.T) {
	var b SyncBuffer
	if b.WaitFor("never", 20*time.Millisecond) {
		t.Error("SyncBuffer.WaitFor = true on an empty buffer")
	}
	var n Notifier
	if n.WaitUntil(20*time.Millisecond, func() bool { return false }) {
		t.Error("Notifier.WaitUntil = true for a false condition")
	}
	if WaitUntil(20*time.Millisecond, func() bool { return false }) {
		t.Error("WaitUntil = true for a false condition")
	}
}

// Ensure a Notifier wakes every waiter, each re-checking its own condition
// on the shared state.
func TestNotifierBroadcast(t *testing.T) {
	var (
		n     Notifier
		mu    sync.Mutex
		count int
	)
	const waiters = 4
	results := make(chan bool, waiters)
	for i := range waiters {
		go func() {
			results <- n.WaitUntil(10*time.Second, func() bool {
				mu.Lock()
				defer mu.Unlock()
				return count > i
			})
		}()
	}
	for range waiters {
		mu.Lock()
		count++
		mu.Unlock()
		n.Notify()
	}
	for range waiters {
		if !Recv(t, results, 10*time.Second, "waiter result") {
			t.Error("a waiter timed out although its condition held")
		}
	}
}

// Ensure Listen serves on loopback and ClosedAddr refuses connections.
func TestListen(t *testing.T) {
	ln := Listen(t)
	if ip := ln.Addr().(*net.TCPAddr).IP; !ip.IsLoopback() {
		t.Fatalf("listener on %v, want loopback", ip)
	}
	go func() {
		if c, err := ln.Accept(); err == nil {
			c.Close()
		}
	}()
	c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", Port(ln)))
	if err != nil {
		t.Fatalf("dial the listener: %v", err)
	}
	c.Close()
	if c, err := net.Dial("tcp", ClosedAddr(t)); err == nil {
		c.Close()
		t.Error("ClosedAddr accepted a connection")
	}
}

// Ensure Golden passes on equal bytes, fails on different ones and on a
// missing file, and with -update writes the file.
func TestGolden(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sub", "out.golden")
	tests := []struct {
		name     string
		update   bool
		got      string
		wantFail bool
	}{
		{"missing", false, "a\nb\n", true},
		{"update creates", true, "a\nb\n", false},
		{"equal", false, "a\nb\n", false},
		{"differs", false, "a\nc\n", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			saved := *update
			*update = tt.update
			defer func() { *update = saved }()
			r := &recorder{TB: t}
			func() {
				defer func() { _ = recover() }() // Fatalf ends the call
				Golden(r, path, []byte(tt.got))
			}()
			if r.failed != tt.wantFail {
				t.Errorf("failed = %v (%s), want %v", r.failed, r.msg, tt.wantFail)
			}
		})
	}
	if got, err := os.ReadFile(path); err != nil || string(got) != "a\nb\n" {
		t.Errorf("golden file %q, %v", got, err)
	}
}

// recorder is a testing.TB that records failures instead of failing.
type recorder struct {
	testing.TB
	failed bool
	msg    string
}

func (r *recorder) Helper() {}
func (r *recorder) Errorf(format string, args ...any) {
	r.failed, r.msg = true, fmt.Sprintf(format, args...)
}
func (r *recorder) Fatalf(format string, args ...any) {
	r.Errorf(format, args...)
	panic(r)
}
