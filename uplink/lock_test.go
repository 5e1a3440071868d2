package uplink

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestModemLockExcludesAndReleases(t *testing.T) {
	path := filepath.Join(t.TempDir(), "modem.lock")
	ctx := context.Background()
	a, err := AcquireModemLock(ctx, path, "uploader flush", time.Second)
	if err != nil {
		t.Fatal(err)
	}
	_, err = AcquireModemLock(ctx, path, "uploader modem check", 150*time.Millisecond)
	var busy *BusyError
	if !errors.As(err, &busy) || !errors.Is(err, ErrModemBusy) || errors.Is(err, ErrWindowBusy) {
		t.Fatalf("second lock: %v, want modem busy", err)
	}
	if !strings.Contains(busy.Holder, "uploader flush") || busy.Waited < 150*time.Millisecond {
		t.Errorf("busy = %+v", busy)
	}
	if !strings.Contains(err.Error(), path) {
		t.Errorf("message %q does not name the lock file", err)
	}
	// A waiter gets the lock once the holder releases it.
	waiting := make(chan error, 1)
	go func() {
		b, err := AcquireModemLock(ctx, path, "uploader modem at", time.Minute)
		if err == nil {
			if err = b.Release(); err == nil {
				err = b.Release() // twice is harmless
			}
		}
		waiting <- err
	}()
	if err := a.Release(); err != nil {
		t.Fatal(err)
	}
	if err := <-waiting; err != nil {
		t.Fatalf("lock after release: %v", err)
	}
}

// A lock whose holder died (its flock dropped by the kernel) is free, and
// a holder line it left is not taken for a holder.
func TestLockLeftByDeadHolderIsFree(t *testing.T) {
	path := filepath.Join(t.TempDir(), "queue.db.window.lock")
	if err := os.WriteFile(path, []byte("pid 999999 (uploader flush) since 2026-01-01T00:00:00Z\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	l, err := acquireLock(context.Background(), path, ErrWindowBusy, "uploader run", 0)
	if err != nil {
		t.Fatalf("lock with a stale holder line: %v", err)
	}
	if got := readHolder(path); !strings.Contains(got, "uploader run") {
		t.Errorf("holder after acquiring = %q", got)
	}
	_, err = acquireLock(context.Background(), path, ErrWindowBusy, "uploader flush", 0)
	if !errors.Is(err, ErrWindowBusy) || !strings.Contains(err.Error(), "uploader run") {
		t.Errorf("second window: %v, want window busy naming the holder", err)
	}
	if err := l.release(); err != nil {
		t.Fatal(err)
	}
	if got := readHolder(path); got != "unknown" {
		t.Errorf("holder after release = %q, want unknown", got)
	}
}

func TestLockWaitEndsWithContext(t *testing.T) {
	path := filepath.Join(t.TempDir(), "modem.lock")
	a, err := AcquireModemLock(context.Background(), path, "uploader flush", 0)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = a.Release() }()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := AcquireModemLock(ctx, path, "uploader modem at", time.Hour); !errors.Is(err, context.Canceled) {
		t.Errorf("wait with a cancelled context: %v", err)
	}
}

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
