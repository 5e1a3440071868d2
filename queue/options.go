package queue

import (
	"log/slog"
	"time"
)

// Policy says what Enqueue does when the queue is at one of its limits.
type Policy int

const (
	// DropOldest makes room by deleting the oldest records (counted in Stats.Dropped).
	DropOldest Policy = iota
	// RejectNew makes Enqueue fail with ErrFull and store nothing but the count of the records
	// it refused (Stats.Rejected).
	RejectNew
)

func (p Policy) String() string {
	switch p {
	case DropOldest:
		return "drop-oldest"
	case RejectNew:
		return "reject-new"
	default:
		return "unknown"
	}
}

// Defaults applied by Open for zero Options fields.
const (
	// DefaultLockTimeout bounds one attempt at bbolt's own file lock. Our lock files are taken
	// first, so bbolt's lock is only ever held by a foreign program (such as the bbolt CLI).
	DefaultLockTimeout = 100 * time.Millisecond
	// DefaultBusyTimeout bounds the total wait for the queue's locks before *BusyError.
	DefaultBusyTimeout = 30 * time.Second
	// DefaultReadRecords is the count bound Read uses when maxRecords <= 0, so that a careless
	// caller still never loads the whole queue into memory.
	DefaultReadRecords = 1000
)

// Options configures a Queue. A nil *Options means all defaults.
type Options struct {
	// MaxRecords bounds the number of stored records; 0 means unlimited.
	MaxRecords int64
	// MaxBytes bounds the sum of topic and payload bytes of stored records; 0 means unlimited.
	// bbolt's own overhead comes on top (see Stats.FileSize).
	MaxBytes int64
	// Policy says what happens at a limit; the default is DropOldest.
	Policy Policy
	// LockTimeout is how long one attempt waits for bbolt's file lock (default DefaultLockTimeout).
	LockTimeout time.Duration
	// BusyTimeout is the total bound for waiting on held locks (default DefaultBusyTimeout).
	// Sensor scripts should keep it well below their own cron period.
	BusyTimeout time.Duration
	// Logger receives drops, expiries and compactions; nil discards. Payloads are never logged.
	Logger *slog.Logger
	// Now is the clock for enqueue times and expiry; nil means time.Now.
	Now func() time.Time
	// NoCreate makes Open, and every later call, fail with ErrNoQueue when the file does not
	// exist, instead of creating it and its directory: for readers such as a status command,
	// where a mistyped path must be an error and leave nothing behind. It does not make the
	// handle read-only (Read still deletes expired records).
	NoCreate bool
}

func (o *Options) withDefaults() Options {
	var out Options
	if o != nil {
		out = *o
	}
	if out.LockTimeout <= 0 {
		out.LockTimeout = DefaultLockTimeout
	}
	if out.BusyTimeout <= 0 {
		out.BusyTimeout = DefaultBusyTimeout
	}
	if out.Logger == nil {
		out.Logger = slog.New(slog.DiscardHandler)
	}
	if out.Now == nil {
		out.Now = time.Now
	}
	return out
}
