package testkit

import (
	"bytes"
	"strings"
	"sync"
	"time"
)

// SyncBuffer is a bytes.Buffer that one or more goroutines (a logger, a
// child process's output copier) write while the test reads it and waits
// for what it expects to appear. The zero value is ready to use; a
// SyncBuffer must not be copied after first use.
type SyncBuffer struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	written Notifier
}

// Write appends p and wakes every waiter.
func (b *SyncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	n, err := b.buf.Write(p)
	b.mu.Unlock()
	b.written.Notify()
	return n, err
}

// String returns everything written so far.
func (b *SyncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Len returns how many bytes were written so far.
func (b *SyncBuffer) Len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Len()
}

// Since returns what was written after the first off bytes.
func (b *SyncBuffer) Since(off int) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.buf.Bytes()[min(max(off, 0), b.buf.Len()):])
}

// Changed returns a channel that is closed by the next Write, for a test
// that waits on the buffer and on something else at once (a process's
// exit). Take it before checking the contents, so no write is missed.
func (b *SyncBuffer) Changed() <-chan struct{} { return b.written.changed() }

// WaitFor waits until the buffer contains sub and reports whether it did
// within timeout. It wakes on each write, not on a timer.
func (b *SyncBuffer) WaitFor(sub string, timeout time.Duration) bool {
	return b.WaitForSince(0, sub, timeout)
}

// WaitForSince is WaitFor for what was written after the first off bytes
// (see Len), for a line that also appeared earlier.
func (b *SyncBuffer) WaitForSince(off int, sub string, timeout time.Duration) bool {
	return b.WaitUntil(timeout, func(s string) bool { return strings.Contains(s[min(max(off, 0), len(s)):], sub) })
}

// WaitUntil waits until cond holds on everything written so far and
// reports whether it did within timeout. It wakes on each write.
func (b *SyncBuffer) WaitUntil(timeout time.Duration, cond func(string) bool) bool {
	return b.written.WaitUntil(timeout, func() bool { return cond(b.String()) })
}
