package queue

import (
	"encoding/binary"
	"fmt"
	"log/slog"
)

// Enqueue stores all records in ONE transaction, fsync'd before it returns; returns assigned seqs.
//
// A zero EnqueuedAt is set to the current time. At a limit, DropOldest deletes the oldest
// records (which may include early records of this very batch when the batch alone exceeds the
// limit) and counts them in Stats.Dropped; RejectNew stores none of the batch and returns
// ErrFull. A single record larger than MaxBytes can never fit and gets ErrFull under either
// policy. Every record of a batch refused with ErrFull is counted in Stats.Rejected: that count
// is committed (and fsync'd) in the same transaction that found the queue full, in place of the
// records, so a refusal costs what an accepted batch costs and is never lost to a power cut.
func (q *Queue) Enqueue(recs ...Record) ([]uint64, error) {
	if err := q.checkOpen(); err != nil {
		return nil, err
	}
	if len(recs) == 0 {
		return nil, nil
	}
	var batchBytes int64
	arenaLen := 0
	// oversize and refused are the ErrFull of this batch; the transaction then only counts it.
	var oversize, refused error
	for i := range recs {
		if err := recs[i].validate(); err != nil {
			return nil, fmt.Errorf("enqueue to %s: record %d: %w", q.path, i, err)
		}
		size := recs[i].size()
		if q.opts.MaxBytes > 0 && size > q.opts.MaxBytes && oversize == nil {
			oversize = fmt.Errorf("record %d: %w: %d bytes, MaxBytes is %d", i, ErrFull, size, q.opts.MaxBytes)
		}
		batchBytes += size
		arenaLen += int(size) + recordHeaderLen + 8 + binary.MaxVarintLen64 + 8 // value + key
	}

	now := q.opts.Now()
	seqs := make([]uint64, len(recs))
	var dropped uint64
	err := q.update(func(t *txn) error {
		last, depth, bytes := t.u64(keyLastSeq), int64(t.u64(keyDepth)), int64(t.u64(keyBytes))
		refused = oversize
		if refused == nil && q.opts.Policy == RejectNew {
			if q.opts.MaxRecords > 0 && depth+int64(len(recs)) > q.opts.MaxRecords {
				refused = fmt.Errorf("%w: %d records stored, %d more would pass MaxRecords %d", ErrFull, depth, len(recs), q.opts.MaxRecords)
			} else if q.opts.MaxBytes > 0 && bytes+batchBytes > q.opts.MaxBytes {
				refused = fmt.Errorf("%w: %d bytes stored, %d more would pass MaxBytes %d", ErrFull, bytes, batchBytes, q.opts.MaxBytes)
			}
		}
		if refused != nil {
			return t.putU64(keyRejected, t.u64(keyRejected)+uint64(len(recs)))
		}
		// bbolt keeps references to keys and values until commit, so nothing may be reused:
		// they are carved from one append-only arena, sized up front to allocate once.
		arena := make([]byte, 0, arenaLen)
		// Sequence numbers only grow, so every insert is an append: fill pages completely.
		t.records.FillPercent = 1.0
		for i := range recs {
			r := recs[i]
			if r.EnqueuedAt.IsZero() {
				r.EnqueuedAt = now
			}
			last++
			seqs[i] = last
			start := len(arena)
			arena = binary.BigEndian.AppendUint64(arena, last)
			key := arena[start:len(arena):len(arena)]
			start = len(arena)
			arena = appendRecord(arena, &r)
			if err := t.records.Put(key, arena[start:len(arena):len(arena)]); err != nil {
				return fmt.Errorf("store record %d: %w", last, err)
			}
			depth++
			bytes += r.size()
		}
		if q.opts.Policy == DropOldest {
			var err error
			if dropped, err = q.dropOldest(t, &depth, &bytes); err != nil {
				return err
			}
		}
		return putCounters(t, map[string]uint64{
			string(keyLastSeq): last,
			string(keyDepth):   uint64(depth),
			string(keyBytes):   uint64(bytes),
			string(keyDropped): t.u64(keyDropped) + dropped,
		})
	})
	switch {
	case refused != nil && err != nil:
		// Still ErrFull to the caller: the batch was refused either way.
		return nil, fmt.Errorf("enqueue to %s: %w (and counting the refusal failed: %w)", q.path, refused, err)
	case refused != nil:
		return nil, fmt.Errorf("enqueue to %s: %w", q.path, refused)
	case err != nil:
		return nil, fmt.Errorf("enqueue to %s: %w", q.path, err)
	}
	if dropped > 0 {
		q.log.Warn("queue at its limit: dropped oldest records", slog.Uint64("dropped", dropped),
			slog.Int64("max_records", q.opts.MaxRecords), slog.Int64("max_bytes", q.opts.MaxBytes))
	}
	return seqs, nil
}

// dropOldest deletes records from the head until the queue is within its limits.
func (q *Queue) dropOldest(t *txn, depth, bytes *int64) (uint64, error) {
	var dropped uint64
	over := func() bool {
		return (q.opts.MaxRecords > 0 && *depth > q.opts.MaxRecords) || (q.opts.MaxBytes > 0 && *bytes > q.opts.MaxBytes)
	}
	for over() {
		c := t.records.Cursor()
		k, v := c.First()
		if k == nil {
			return dropped, fmt.Errorf("%w: counters say %d records but none are stored", ErrCorrupt, *depth)
		}
		size, err := recordSize(v)
		if err != nil {
			return dropped, fmt.Errorf("%w: record %x: %w", ErrCorrupt, k, err)
		}
		key := append([]byte(nil), k...) // k dies with the cursor's deletion
		if err := c.Delete(); err != nil {
			return dropped, fmt.Errorf("drop record %x: %w", key, err)
		}
		if err := deleteStrike(t, key); err != nil {
			return dropped, fmt.Errorf("drop strikes of record %x: %w", key, err)
		}
		*depth--
		*bytes -= size
		dropped++
	}
	return dropped, nil
}

func putCounters(t *txn, counters map[string]uint64) error {
	for k, v := range counters {
		if err := t.putU64([]byte(k), v); err != nil {
			return fmt.Errorf("store counter %s: %w", k, err)
		}
	}
	return nil
}
