package queue

import (
	"bytes"
	"fmt"
	"os"
	"time"
)

// Stats describes the queue. Everything comes from counters kept in the meta bucket and from
// the first and last record, so it costs the same at any depth.
type Stats struct {
	Depth    int64     // records stored
	Bytes    int64     // topic+payload bytes stored
	FileSize int64     // size of the queue file on disk
	Oldest   time.Time // EnqueuedAt of the oldest record; zero when empty
	Newest   time.Time // EnqueuedAt of the newest record; zero when empty
	Dropped  uint64    // records deleted by the DropOldest policy, ever
	Expired  uint64    // records deleted unsent because they expired, ever
	Rejected uint64    // records Enqueue refused with ErrFull (RejectNew at a limit, or larger than MaxBytes), ever
	LastSeq  uint64    // the last sequence number assigned, ever
	// Quarantined is the number of records in the quarantine (Queue.Quarantine): out of the
	// queue and not counted in Depth or Bytes.
	Quarantined int64
}

// Stats reads the queue's counters.
func (q *Queue) Stats() (Stats, error) {
	var s Stats
	err := q.view(func(t *txn) error {
		s.Depth = int64(t.u64(keyDepth))
		s.Bytes = int64(t.u64(keyBytes))
		s.Dropped = t.u64(keyDropped)
		s.Expired = t.u64(keyExpired)
		s.Rejected = t.u64(keyRejected)
		s.LastSeq = t.u64(keyLastSeq)
		s.Quarantined = int64(t.u64(keyQuarantined))
		c := t.records.Cursor()
		if k, v := c.First(); k != nil {
			at, err := enqueuedAtOf(v)
			if err != nil {
				return fmt.Errorf("%w: oldest record %x: %w", ErrCorrupt, k, err)
			}
			s.Oldest = at
		}
		if k, v := c.Last(); k != nil {
			at, err := enqueuedAtOf(v)
			if err != nil {
				return fmt.Errorf("%w: newest record %x: %w", ErrCorrupt, k, err)
			}
			s.Newest = at
		}
		info, err := os.Stat(q.path)
		if err != nil {
			return err
		}
		s.FileSize = info.Size()
		return nil
	})
	if err != nil {
		return Stats{}, fmt.Errorf("stats of %s: %w", q.path, err)
	}
	return s, nil
}

// PutWindowSummary stores opaque bytes describing the last uplink window (the uplink stores
// JSON), replacing any earlier summary. Empty data removes the summary.
func (q *Queue) PutWindowSummary(data []byte) error {
	err := q.update(func(t *txn) error {
		if len(data) == 0 {
			return t.meta.Delete(keyWindow)
		}
		return t.meta.Put(keyWindow, bytes.Clone(data))
	})
	if err != nil {
		return fmt.Errorf("store window summary in %s: %w", q.path, err)
	}
	return nil
}

// WindowSummary returns a copy of the stored window summary, or nil, nil when none is stored.
func (q *Queue) WindowSummary() ([]byte, error) {
	var out []byte
	err := q.view(func(t *txn) error {
		if v := t.meta.Get(keyWindow); v != nil {
			out = bytes.Clone(v)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read window summary of %s: %w", q.path, err)
	}
	return out, nil
}
