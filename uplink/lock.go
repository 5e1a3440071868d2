package uplink

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
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
//
// The file also carries what a holder that dies leaves behind in the module
// (see MidPacketUntil): the lock is the one thing every process that talks
// to the module takes first.
type ModemLock struct {
	f              *os.File
	path           string
	holder         string
	midPacketUntil time.Time
	midPacketHold  time.Duration
}

// midPacketPrefix starts the lock file line that records a split write.
const midPacketPrefix = "mid-packet until "

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
	l := &ModemLock{
		f:      f,
		path:   path,
		holder: fmt.Sprintf("pid %d (%s) since %s", os.Getpid(), what, time.Now().UTC().Format(time.RFC3339)),
	}
	if b, err := io.ReadAll(io.LimitReader(f, 4096)); err == nil {
		l.midPacketUntil, l.midPacketHold = parseMidPacket(string(b), time.Now())
	}
	// Record the holder for the next process's error message, keeping a
	// dead holder's mark. Failure to write it is harmless: the lock itself
	// is the flock.
	_ = l.rewrite()
	return l, nil
}

// MidPacketUntil reports that an earlier holder died while the broker held
// part of a packet the module was still sending (a PUBLISH larger than one
// AT+CIPSEND): the module may be waiting for the rest, and the first bytes
// it hears (AT probes, filler) would complete that PUBLISH into a corrupted
// one the broker accepts. From the returned time on the broker has surely
// dropped that connection (its keep-alive ran out after the last chunk, see
// midPacketHold), and nothing sent to the module can reach it any more.
// Zero when there is no such mark.
func (l *ModemLock) MidPacketUntil() time.Time { return l.midPacketUntil }

// ReadMidPacketMark reads the lock file at path without taking the lock
// (for status reports) and returns its MidPacketUntil, zero when there is
// no mark or no file.
func ReadMidPacketMark(path string) (time.Time, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return time.Time{}, nil
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("modem lock %s: %w", path, err)
	}
	until, _ := parseMidPacket(string(b), time.Now())
	return until, nil
}

// AwaitMidPacket waits until MidPacketUntil, then clears the mark. Call it
// before sending anything to the module when no power switch can reset it
// instead: once the broker's keep-alive has run out, the bytes that
// complete the module's pending AT+CIPSEND go nowhere.
func (l *ModemLock) AwaitMidPacket(ctx context.Context, log *slog.Logger) error {
	until := l.midPacketUntil
	if until.IsZero() {
		return nil
	}
	if wait := time.Until(until); wait > 0 {
		log.Warn("an earlier window died while the broker held part of a PUBLISH; waiting for the broker to drop that connection before talking to the module",
			"wait", wait.Round(time.Second), "until", until.Format(time.RFC3339))
		t := time.NewTimer(wait)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			return fmt.Errorf("waiting until %s for the broker to drop a connection holding part of a PUBLISH: %w",
				until.Format(time.RFC3339), context.Cause(ctx))
		}
	}
	l.dropMidPacket(log)
	return nil
}

// dropMidPacket is clearMidPacket for callers that can only log a failure.
func (l *ModemLock) dropMidPacket(log *slog.Logger) {
	if err := l.clearMidPacket(); err != nil {
		log.Warn("could not clear the mid-packet mark; the next window waits needlessly", "err", err)
	}
}

// markMidPacket records, durably, that the broker holds part of a packet
// and keeps the connection for up to hold from now.
func (l *ModemLock) markMidPacket(hold time.Duration) error {
	if until := time.Now().Add(hold); until.After(l.midPacketUntil) {
		l.midPacketUntil, l.midPacketHold = until, hold
	}
	return l.rewrite()
}

// clearMidPacket removes the mark once the packet is whole at the broker,
// the connection is closed, or the module was power-cycled.
func (l *ModemLock) clearMidPacket() error {
	if l.midPacketUntil.IsZero() {
		return nil
	}
	l.midPacketUntil, l.midPacketHold = time.Time{}, 0
	return l.rewrite()
}

// rewrite stores the holder line and the mark. Content holding a mark is
// synced: a board that reboots while the module keeps its supply must
// still find it. The rest is not worth an fsync per window: a lost holder
// line only blurs a busy message, and a lost clearing only makes the next
// window wait needlessly.
func (l *ModemLock) rewrite() error {
	if l.f == nil {
		return nil
	}
	var content string
	if l.holder != "" {
		content = l.holder + "\n"
	}
	if !l.midPacketUntil.IsZero() {
		content += fmt.Sprintf("%s%s hold %s\n", midPacketPrefix, l.midPacketUntil.UTC().Format(time.RFC3339Nano), l.midPacketHold)
	}
	// Written over the old content, then cut to length: a crash in
	// between leaves the new lines first, never an empty file.
	if _, err := l.f.WriteAt([]byte(content), 0); err != nil {
		return fmt.Errorf("modem lock %s: %w", l.path, err)
	}
	if err := l.f.Truncate(int64(len(content))); err != nil {
		return fmt.Errorf("modem lock %s: %w", l.path, err)
	}
	if l.midPacketUntil.IsZero() {
		return nil
	}
	if err := l.f.Sync(); err != nil {
		return fmt.Errorf("modem lock %s: %w", l.path, err)
	}
	return nil
}

// parseMidPacket finds the mark in the lock file. The wait it implies is
// capped at its hold: a board without a real-time clock may boot with its
// clock behind, and must not then wait for hours.
func parseMidPacket(content string, now time.Time) (time.Time, time.Duration) {
	for line := range strings.Lines(content) {
		rest, ok := strings.CutPrefix(strings.TrimSpace(line), midPacketPrefix)
		if !ok {
			continue
		}
		at, holdText, ok := strings.Cut(rest, " hold ")
		if !ok {
			continue
		}
		until, err1 := time.Parse(time.RFC3339Nano, at)
		hold, err2 := time.ParseDuration(holdText)
		if err1 != nil || err2 != nil || hold <= 0 || until.IsZero() {
			continue
		}
		if until.Sub(now) > hold {
			until = now.Add(hold)
		}
		return until, hold
	}
	return time.Time{}, 0
}

func readHolder(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "unknown"
	}
	s, _, _ := strings.Cut(string(b), "\n")
	s = strings.TrimSpace(s)
	if s == "" || strings.HasPrefix(s, midPacketPrefix) || len(s) > 200 {
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
	// The holder line goes; a mark stays for the next holder.
	l.holder = ""
	_ = l.rewrite()
	l.f = nil
	err := unix.Flock(int(f.Fd()), unix.LOCK_UN)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
