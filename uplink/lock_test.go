package uplink

import (
	"context"
	"errors"
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
	var busy *ModemBusyError
	if !errors.As(err, &busy) || !errors.Is(err, ErrModemBusy) {
		t.Fatalf("second lock: %v, want busy", err)
	}
	if !strings.Contains(busy.Holder, "uploader flush") || busy.Waited < 150*time.Millisecond {
		t.Errorf("busy = %+v", busy)
	}
	if !strings.Contains(err.Error(), path) {
		t.Errorf("message %q does not name the lock file", err)
	}
	// A waiter gets the lock once the holder releases it.
	time.AfterFunc(100*time.Millisecond, func() { a.Release() })
	b, err := AcquireModemLock(ctx, path, "uploader modem at", 2*time.Second)
	if err != nil {
		t.Fatalf("lock after release: %v", err)
	}
	b.Release()
	b.Release() // twice is harmless
}
