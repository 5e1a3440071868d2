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
)

// midPacketMark is the module's crash state: the record, kept in a file of
// its own beside the modem lock, that the broker may hold part of a PUBLISH
// the module was still sending when its window died (see # Caveats in the
// package doc). The module may then be waiting for the rest of an
// AT+CIPSEND, and the first bytes it hears — AT probes, filler — would
// complete that PUBLISH into a corrupted one the broker accepts.
//
// Only a holder of the modem lock writes it. It is set, synced, before
// each later AT+CIPSEND of a PUBLISH larger than one chunk, and cleared
// once the packet is whole at the broker, the connection is closed, or the
// module was power-cycled.
type midPacketMark struct {
	path  string
	f     *os.File // open while the modem is held; nil for read-only use
	until time.Time
	hold  time.Duration
}

// midPacketPrefix starts the mark file's one line.
const midPacketPrefix = "mid-packet until "

// midPacketPath is the mark file that goes with a modem lock file.
func midPacketPath(lockPath string) string {
	return strings.TrimSuffix(lockPath, ".lock") + ".midpacket"
}

// openMidPacketMark opens the mark beside the modem lock at lockPath and
// reads what a dead holder left. The caller holds the modem lock.
func openMidPacketMark(lockPath string) (*midPacketMark, error) {
	path := midPacketPath(lockPath)
	_, statErr := os.Stat(path)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("mid-packet mark %s: %w", path, err)
	}
	if errors.Is(statErr, os.ErrNotExist) {
		// The file must survive a power cut the first time a mark is
		// written into it; its directory entry is made durable now, once.
		if d, err := os.Open(filepath.Dir(path)); err == nil {
			_ = d.Sync()
			d.Close()
		}
	}
	m := &midPacketMark{path: path, f: f}
	if b, err := io.ReadAll(io.LimitReader(f, 4096)); err == nil {
		m.until, m.hold = parseMidPacket(string(b), time.Now())
	}
	return m, nil
}

// ReadMidPacketMark reads, without taking any lock, the mark beside the
// modem lock at lockPath (for status reports): the time until which the
// next window waits before talking to the module, zero when there is no
// mark.
func ReadMidPacketMark(lockPath string) (time.Time, error) {
	path := midPacketPath(lockPath)
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return time.Time{}, nil
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("mid-packet mark %s: %w", path, err)
	}
	until, _ := parseMidPacket(string(b), time.Now())
	return until, nil
}

// Until is when the broker has surely dropped the connection holding part
// of a PUBLISH (its keep-alive ran out after the last chunk, see
// midPacketHold): from then on nothing sent to the module can reach it.
// Zero when there is no mark.
func (m *midPacketMark) Until() time.Time { return m.until }

// set records, durably, that the broker holds part of a packet and keeps
// the connection for up to hold from now.
func (m *midPacketMark) set(hold time.Duration) error {
	if until := time.Now().Add(hold); until.After(m.until) {
		m.until, m.hold = until, hold
	}
	line := fmt.Sprintf("%s%s hold %s\n", midPacketPrefix, m.until.UTC().Format(time.RFC3339Nano), m.hold)
	// Written over the old content, then cut to length: a crash in
	// between leaves the new line first, never an empty file.
	if _, err := m.f.WriteAt([]byte(line), 0); err != nil {
		return fmt.Errorf("mid-packet mark %s: %w", m.path, err)
	}
	if err := m.f.Truncate(int64(len(line))); err != nil {
		return fmt.Errorf("mid-packet mark %s: %w", m.path, err)
	}
	// A board that reboots while the module keeps its supply must still
	// find the mark.
	if err := m.f.Sync(); err != nil {
		return fmt.Errorf("mid-packet mark %s: %w", m.path, err)
	}
	return nil
}

// clear removes the mark. Not synced: a clearing lost in a power cut only
// makes the next window wait needlessly.
func (m *midPacketMark) clear() error {
	if m.until.IsZero() {
		return nil
	}
	m.until, m.hold = time.Time{}, 0
	if err := m.f.Truncate(0); err != nil {
		return fmt.Errorf("mid-packet mark %s: %w", m.path, err)
	}
	return nil
}

// drop is clear for callers that can only log a failure.
func (m *midPacketMark) drop(log *slog.Logger) {
	if err := m.clear(); err != nil {
		log.Warn("could not clear the mid-packet mark; the next window waits needlessly", "err", err)
	}
}

// await waits until Until, then clears the mark. Call it before sending
// anything to the module when no power switch can reset it instead: once
// the broker's keep-alive has run out, the bytes that complete the
// module's pending AT+CIPSEND go nowhere.
func (m *midPacketMark) await(ctx context.Context, log *slog.Logger) error {
	until := m.until
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
	m.drop(log)
	return nil
}

func (m *midPacketMark) close() {
	if m != nil && m.f != nil {
		m.f.Close()
		m.f = nil
	}
}

// midPacketHold is how long after a chunk of a split PUBLISH the broker
// may keep the connection. MQTT has it close a connection that sent no
// whole packet for 1.5 times the keep-alive, but brokers check coarsely:
// mosquitto 2.0.11 (Debian 12) looks every 5-6 s, and with a keep-alive of
// 4 s it dropped an idle client after 11-12 s, not 6 s. The 10 s cover
// that; half the keep-alive more (at most 30 s) covers data the module
// still had queued, which the broker may count as activity (mosquitto
// restarts the keep-alive when part of a large packet arrives).
func midPacketHold(keepAlive time.Duration) time.Duration {
	return keepAlive*3/2 + 10*time.Second + min(keepAlive/2, 30*time.Second)
}

// parseMidPacket reads the mark file's line. The wait it implies is capped
// at its hold: a board without a real-time clock may boot with its clock
// behind, and must not then wait for hours.
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
