package uplink

import (
	"context"
	"errors"
	"io"
	"log/slog"
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
	time.AfterFunc(100*time.Millisecond, func() {
		if err := a.Release(); err != nil {
			t.Error(err)
		}
	})
	b, err := AcquireModemLock(ctx, path, "uploader modem at", 2*time.Second)
	if err != nil {
		t.Fatalf("lock after release: %v", err)
	}
	if err := b.Release(); err != nil {
		t.Fatal(err)
	}
	if err := b.Release(); err != nil { // twice is harmless
		t.Fatal(err)
	}
}

// Ensure the mid-packet mark survives its holder (Release is what the
// kernel does for a dead process), shows in the next holder's
// MidPacketUntil, leaves the busy message alone, and goes once cleared.
func TestModemLockMidPacketMark(t *testing.T) {
	path := filepath.Join(t.TempDir(), "modem.lock")
	ctx := context.Background()
	a, err := AcquireModemLock(ctx, path, "uploader flush", time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if !a.MidPacketUntil().IsZero() {
		t.Fatalf("fresh lock has a mark: %v", a.MidPacketUntil())
	}
	before := time.Now()
	if err := a.markMidPacket(90 * time.Second); err != nil {
		t.Fatal(err)
	}
	_, err = AcquireModemLock(ctx, path, "uploader modem check", 50*time.Millisecond)
	var busy *ModemBusyError
	if !errors.As(err, &busy) || !strings.HasPrefix(busy.Holder, "pid ") || strings.Contains(busy.Holder, "mid-packet") {
		t.Errorf("busy while marked: %v (holder %q)", err, busy.Holder)
	}
	if err := a.Release(); err != nil {
		t.Fatal(err)
	}

	b, err := AcquireModemLock(ctx, path, "uploader flush", time.Second)
	if err != nil {
		t.Fatal(err)
	}
	until := b.MidPacketUntil()
	if until.Before(before.Add(90*time.Second)) || until.After(time.Now().Add(90*time.Second)) {
		t.Errorf("mark until %v, want 90 s after the mark was written (%v)", until, before)
	}
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if err := b.AwaitMidPacket(short, discardLogger()); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("AwaitMidPacket with a 50 ms context and a mark 90 s ahead: %v, want the context's error", err)
	}
	if b.MidPacketUntil().IsZero() {
		t.Fatal("an interrupted wait cleared the mark")
	}
	if err := b.Release(); err != nil {
		t.Fatal(err)
	}

	// A board whose clock went back must not wait past the mark's hold.
	c, err := AcquireModemLock(ctx, path, "uploader flush", time.Second)
	if err != nil {
		t.Fatal(err)
	}
	got, hold := parseMidPacket(midPacketPrefix+time.Now().Add(10*time.Hour).UTC().Format(time.RFC3339Nano)+" hold 1m30s\n", time.Now())
	if hold != 90*time.Second || time.Until(got) > 90*time.Second {
		t.Errorf("mark 10 h ahead with hold 90 s: until %v, hold %v; want the wait capped at the hold", got, hold)
	}
	if err := c.clearMidPacket(); err != nil {
		t.Fatal(err)
	}
	if err := c.Release(); err != nil {
		t.Fatal(err)
	}
	d, err := AcquireModemLock(ctx, path, "uploader flush", time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = d.Release() }()
	if !d.MidPacketUntil().IsZero() {
		t.Errorf("mark still there after clearMidPacket: %v", d.MidPacketUntil())
	}
}

// Ensure AwaitMidPacket waits until the mark's time, then clears it.
func TestModemLockAwaitMidPacket(t *testing.T) {
	path := filepath.Join(t.TempDir(), "modem.lock")
	ctx := context.Background()
	a, err := AcquireModemLock(ctx, path, "dying window", time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.markMidPacket(300 * time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if err := a.Release(); err != nil {
		t.Fatal(err)
	}
	b, err := AcquireModemLock(ctx, path, "next window", time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = b.Release() }()
	until := b.MidPacketUntil()
	if err := b.AwaitMidPacket(ctx, discardLogger()); err != nil {
		t.Fatal(err)
	}
	if time.Now().Before(until) {
		t.Errorf("AwaitMidPacket returned before %v", until)
	}
	if !b.MidPacketUntil().IsZero() {
		t.Errorf("mark not cleared")
	}
}

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// FuzzParseMidPacket: whatever the lock file holds (a torn write, another
// tool's bytes), parsing never panics and never asks for a wait longer than
// the mark's own hold.
func FuzzParseMidPacket(f *testing.F) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	f.Add("pid 12 (uploader flush) since 2026-11-25T11:59:00Z\nmid-packet until 2026-11-25T12:01:30.5Z hold 2m0s\n")
	f.Add("mid-packet until 2099-01-01T00:00:00Z hold 1m30s\n")
	f.Add("mid-packet until garbage hold 5s\n")
	f.Add("mid-packet until 2026-11-25T12:01:30Z hold -5s\n")
	f.Add("mid-packet until 0001-01-01T00:00:00Z hold 5s\n")
	f.Add("")
	f.Fuzz(func(t *testing.T, content string) {
		until, hold := parseMidPacket(content, now)
		if until.IsZero() != (hold == 0) {
			t.Fatalf("until %v with hold %v", until, hold)
		}
		if hold < 0 || until.Sub(now) > hold {
			t.Fatalf("until %v is more than the hold %v after now", until, hold)
		}
	})
}

// Ensure the mid-packet hold outlasts the broker's keep-alive check: 1.5
// keep-alives, 10 s for coarse broker timers, half a keep-alive (at most
// 30 s) for queued data.
func TestMidPacketHold(t *testing.T) {
	for _, tt := range []struct{ keepAlive, want time.Duration }{
		{4 * time.Second, 18 * time.Second},
		{60 * time.Second, 130 * time.Second},
		{65535 * time.Second, 65535*time.Second*3/2 + 40*time.Second},
	} {
		if got := midPacketHold(tt.keepAlive); got != tt.want {
			t.Errorf("midPacketHold(%v) = %v, want %v", tt.keepAlive, got, tt.want)
		}
	}
}
