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

// ErrModemBusy means another process holds the modem (a window, `modem
// check` or `modem at`). errors.As with *ModemBusyError gives the holder.
var ErrModemBusy = errors.New("modem busy")

// ModemBusyError names who holds the modem lock.
type ModemBusyError struct {
	LockPath string
	Holder   string // "pid 1234 (uploader flush) since 2026-11-25T14:00:00Z", or "unknown"
	Waited   time.Duration
}

func (e *ModemBusyError) Error() string {
	return fmt.Sprintf("modem busy: held by %s (lock %s), gave up after %s", e.Holder, e.LockPath, e.Waited.Round(time.Millisecond))
}

// Is makes errors.Is(err, ErrModemBusy) true.
func (e *ModemBusyError) Is(target error) bool { return target == ErrModemBusy }

// ModemLock is an exclusive flock on a file beside the queue. The kernel
// drops it when the holder dies, so a SIGKILLed window never wedges the site.
type ModemLock struct {
	f *os.File
}

// AcquireModemLock waits up to timeout for the lock. what describes the
// caller for the busy message another process may print.
func AcquireModemLock(ctx context.Context, path, what string, timeout time.Duration) (*ModemLock, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("modem lock %s: %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("modem lock %s: %w", path, err)
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
			return nil, fmt.Errorf("modem lock %s: %w", path, err)
		}
		if !time.Now().Before(deadline) {
			holder := readHolder(path)
			f.Close()
			return nil, &ModemBusyError{LockPath: path, Holder: holder, Waited: time.Since(start)}
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("modem lock %s: %w", path, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
	// Record the holder for the next process's error message. Failure to
	// write it is harmless: the lock itself is the flock.
	if err := f.Truncate(0); err == nil {
		fmt.Fprintf(f, "pid %d (%s) since %s\n", os.Getpid(), what, time.Now().UTC().Format(time.RFC3339))
		_ = f.Sync()
	}
	return &ModemLock{f: f}, nil
}

func readHolder(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "unknown"
	}
	s := strings.TrimSpace(string(b))
	if s == "" || len(s) > 200 {
		return "unknown"
	}
	return s
}

// Release unlocks. Safe to call more than once.
func (l *ModemLock) Release() error {
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
