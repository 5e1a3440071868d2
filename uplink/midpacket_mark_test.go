package uplink

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The mark survives its writer (a dead window), is read by the next one,
// is visible to status without a lock, and goes once cleared.
func TestMidPacketMarkSurvivesItsWriter(t *testing.T) {
	lockPath := filepath.Join(t.TempDir(), "queue.db.modem.lock")
	a, err := openMidPacketMark(lockPath)
	if err != nil {
		t.Fatal(err)
	}
	if !a.Until().IsZero() {
		t.Fatalf("fresh mark: %v", a.Until())
	}
	before := time.Now()
	if err := a.set(90 * time.Second); err != nil {
		t.Fatal(err)
	}
	a.close() // the window dies

	b, err := openMidPacketMark(lockPath)
	if err != nil {
		t.Fatal(err)
	}
	defer b.close()
	until := b.Until()
	if until.Before(before.Add(90*time.Second)) || until.After(time.Now().Add(90*time.Second)) {
		t.Errorf("mark until %v, want 90 s after it was written (%v)", until, before)
	}
	if got, err := ReadMidPacketMark(lockPath); err != nil || !got.Equal(until) {
		t.Errorf("ReadMidPacketMark = %v, %v; want %v", got, err, until)
	}
	if lock, err := os.ReadFile(lockPath); err == nil && strings.Contains(string(lock), midPacketPrefix) {
		t.Error("the mark is in the lock file")
	}
	short, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := b.await(short, discardLogger()); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("await with a 50 ms context and a mark 90 s ahead: %v, want the context's error", err)
	}
	if b.Until().IsZero() {
		t.Fatal("an interrupted wait cleared the mark")
	}
	if err := b.clear(); err != nil {
		t.Fatal(err)
	}
	if got, err := ReadMidPacketMark(lockPath); err != nil || !got.IsZero() {
		t.Errorf("after clear: %v, %v", got, err)
	}
}

func TestReadMidPacketMarkWithoutFile(t *testing.T) {
	got, err := ReadMidPacketMark(filepath.Join(t.TempDir(), "none.modem.lock"))
	if err != nil || !got.IsZero() {
		t.Errorf("no file: %v, %v", got, err)
	}
}

// await waits until the mark's time, then clears it.
func TestMidPacketMarkAwait(t *testing.T) {
	lockPath := filepath.Join(t.TempDir(), "modem.lock")
	a, err := openMidPacketMark(lockPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.set(300 * time.Millisecond); err != nil {
		t.Fatal(err)
	}
	a.close()
	b, err := openMidPacketMark(lockPath)
	if err != nil {
		t.Fatal(err)
	}
	defer b.close()
	until := b.Until()
	if err := b.await(context.Background(), discardLogger()); err != nil {
		t.Fatal(err)
	}
	if time.Now().Before(until) {
		t.Errorf("await returned before %v", until)
	}
	if !b.Until().IsZero() {
		t.Errorf("mark not cleared")
	}
}

// A board whose clock went back must not wait past the mark's hold.
func TestMidPacketMarkWaitCappedAtHold(t *testing.T) {
	got, hold := parseMidPacket(midPacketPrefix+time.Now().Add(10*time.Hour).UTC().Format(time.RFC3339Nano)+" hold 1m30s\n", time.Now())
	if hold != 90*time.Second || time.Until(got) > 90*time.Second {
		t.Errorf("mark 10 h ahead with hold 90 s: until %v, hold %v; want the wait capped at the hold", got, hold)
	}
}

// FuzzParseMidPacket: whatever the mark file holds (a torn write, another
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

// The mid-packet hold outlasts the broker's keep-alive check: 1.5
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
