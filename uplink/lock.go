package uplink

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Busy errors: another process holds what a caller needs. errors.As with
// *BusyError gives the holder.
var (
	// ErrModemBusy: another process talks to the modem (a window, `modem
	// check` or `modem at`).
	ErrModemBusy = errors.New("modem busy")
	// ErrWindowBusy: another window drains the same queue, whatever its
	// transport.
	ErrWindowBusy = errors.New("window busy")
)

// BusyError names who holds a lock.
type BusyError struct {
	Kind     error // ErrModemBusy or ErrWindowBusy
	LockPath string
	Holder   string // "pid 1234 (uploader flush) since 2026-11-25T14:00:00Z", or "unknown"
	Waited   time.Duration
}

func (e *BusyError) Error() string {
	return fmt.Sprintf("%v: held by %s (lock %s), gave up after %s", e.Kind, e.Holder, e.LockPath, e.Waited.Round(time.Millisecond))
}

// Is makes errors.Is(err, ErrModemBusy) (or ErrWindowBusy) true.
func (e *BusyError) Is(target error) bool { return target == e.Kind }

// fileLock is an exclusive flock on a file that also names its holder for
// the busy message other processes print. The kernel drops the flock when
// the holder dies, so a SIGKILLed process never wedges the site.
//
// It only excludes processes; what a dead holder leaves in the module is
// the mid-packet mark's business (midpacket.go).
type fileLock struct {
	f    *os.File
	path string
}

// lockPoll is how often a waiter retries a held lock.
const lockPoll = 50 * time.Millisecond

// acquireLock waits up to timeout for the lock at path; kind is the busy
// error it fails with, what describes the caller for others' messages.
func acquireLock(ctx context.Context, path string, kind error, what string, timeout time.Duration) (*fileLock, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	start := time.Now()
	deadline := start.Add(timeout)
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, unix.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		if !time.Now().Before(deadline) {
			f.Close()
			return nil, &BusyError{Kind: kind, LockPath: path, Holder: readHolder(path), Waited: time.Since(start)}
		}
		t := time.NewTimer(min(lockPoll, time.Until(deadline)))
		select {
		case <-ctx.Done():
			t.Stop()
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, ctx.Err())
		case <-t.C:
		}
	}
	l := &fileLock{f: f, path: path}
	// Name the holder for the next process's busy message. Failure to
	// write it is harmless: the lock itself is the flock. Not synced: a
	// holder line lost in a power cut only blurs a message.
	holder := fmt.Sprintf("pid %d (%s) since %s\n", os.Getpid(), what, time.Now().UTC().Format(time.RFC3339))
	if _, err := f.WriteAt([]byte(holder), 0); err == nil {
		_ = f.Truncate(int64(len(holder)))
	}
	return l, nil
}

func readHolder(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "unknown"
	}
	s, _, _ := strings.Cut(string(b), "\n")
	s = strings.TrimSpace(s)
	if !strings.HasPrefix(s, "pid ") || len(s) > 200 {
		return "unknown"
	}
	return s
}

// release empties the holder line and unlocks. Safe on nil and twice.
func (l *fileLock) release() error {
	if l == nil || l.f == nil {
		return nil
	}
	f := l.f
	l.f = nil
	_ = f.Truncate(0)
	err := unix.Flock(int(f.Fd()), unix.LOCK_UN)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// ModemLock is held by every process that talks to the module: windows,
// `modem check`, `modem at`, the daemon's start-up radio check. It sits
// beside the queue (cmd/uploader names it "<db>.modem.lock").
type ModemLock struct{ l *fileLock }

// AcquireModemLock waits up to timeout for the modem lock. what describes
// the caller for the busy message another process may print. Most callers
// want OpenModem, which takes it and deals with what a dead holder left.
func AcquireModemLock(ctx context.Context, path, what string, timeout time.Duration) (*ModemLock, error) {
	l, err := acquireLock(ctx, path, ErrModemBusy, what, timeout)
	if err != nil {
		return nil, err
	}
	return &ModemLock{l: l}, nil
}

// Release unlocks. Safe to call more than once.
func (m *ModemLock) Release() error {
	if m == nil {
		return nil
	}
	return m.l.release()
}

// windowLockPath is the lock that keeps two windows from draining one
// queue at once (two would send the same records twice).
func windowLockPath(queuePath string) string { return queuePath + ".window.lock" }
