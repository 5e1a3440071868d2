package queue

import (
	"errors"
	"fmt"
	"time"
)

// These errors come back from Enqueue when a record cannot be stored.
var (
	// ErrFull is returned by Enqueue when the queue is at MaxRecords or MaxBytes under the
	// RejectNew policy, or when a single record is larger than MaxBytes under any policy.
	ErrFull = errors.New("queue is full")

	// ErrInvalidRecord is returned by Enqueue for a record with an empty topic or a QoS above 2.
	ErrInvalidRecord = errors.New("invalid record")
)

// These errors describe a queue file that cannot be used. Nothing is written to such a file.
var (
	// ErrNotQueue is returned when the file exists but is not a bbolt database holding a queue.
	ErrNotQueue = errors.New("not a queue file")

	// ErrNewerFormat is returned when the file was written by a newer program with a format
	// version this one does not understand.
	ErrNewerFormat = errors.New("queue file has a newer format version")

	// ErrCorrupt is returned when the file is truncated, fails the consistency check, or holds
	// a record that cannot be decoded.
	ErrCorrupt = errors.New("queue file is corrupt")
)

// ErrNoQueue is returned, wrapped with the path ("no queue at PATH"), by Open and every later
// call of a queue opened with Options.NoCreate when the file does not exist.
var ErrNoQueue = errors.New("no queue")

// ErrClosed is returned by every method called after Close.
var ErrClosed = errors.New("queue is closed")

// ErrBusy is matched (errors.Is) by every *BusyError.
var ErrBusy = errors.New("queue is busy")

// BusyError is returned when the queue's lock stayed held by another process (or another
// *Queue in this process) for longer than Options.BusyTimeout.
type BusyError struct {
	Path   string
	Waited time.Duration
}

func (e *BusyError) Error() string {
	return fmt.Sprintf("queue %s is busy (locked by another process) after waiting %s",
		e.Path, e.Waited.Round(time.Millisecond))
}

// Is reports whether target is ErrBusy.
func (e *BusyError) Is(target error) bool { return target == ErrBusy }

// Internal errors: never returned bare, always wrapped into one of the exported ones above or
// handled inside the package.
var (
	errEmptyPath = errors.New("empty path")

	// errLockDeadline means the queue's lock files stayed locked until the BusyTimeout deadline.
	errLockDeadline = errors.New("lock deadline passed")
	// errDBLockTimeout means a foreign program holds bbolt's own lock; withLock retries it.
	errDBLockTimeout = errors.New("bbolt file lock timeout")

	// Meta page pre-check (bboltmeta.go).
	errMetaMagic    = errors.New("no bbolt meta page")
	errMetaVersion  = errors.New("unsupported bbolt version")
	errMetaChecksum = errors.New("bbolt meta page checksum mismatch")
	errMetaFields   = errors.New("bbolt meta page fields out of range")

	// Record decoding (record.go); callers wrap them in ErrCorrupt.
	errRecordShort   = errors.New("record value too short")
	errRecordVersion = errors.New("unknown record layout version")
	errRecordFlags   = errors.New("unknown record flags")
	errRecordTopic   = errors.New("bad record topic length")

	// Quarantine value decoding (quarantine.go); callers wrap it in ErrCorrupt.
	errQuarantineReason = errors.New("bad quarantine reason length")
)
