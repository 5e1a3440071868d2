package queue

import (
	"encoding/binary"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"time"

	"go.etcd.io/bbolt"
)

// maxExpiredPerPass bounds the sequence numbers of expired records one read pass collects
// before it stops to delete them, so a long run of expired records costs bounded memory.
const maxExpiredPerPass = 4096

// Read returns up to maxRecords records (and about maxBytes payload+topic bytes, at least one record)
// with Seq > after, oldest first. Expired records met on the way are deleted and counted.
//
// maxRecords <= 0 means DefaultReadRecords; maxBytes <= 0 means no byte bound. The records are
// copies and stay valid after the call. Read does not remove anything it returns: call Ack.
func (q *Queue) Read(after uint64, maxRecords, maxBytes int) ([]Record, error) {
	if err := q.checkOpen(); err != nil {
		return nil, err
	}
	if maxRecords <= 0 {
		maxRecords = DefaultReadRecords
	}
	if after == math.MaxUint64 {
		return nil, nil
	}
	batch := readBatch{after: after, maxRecords: maxRecords, maxBytes: maxBytes}
	var expiredTotal uint64
	err := q.run(false, func(db *bbolt.DB) error {
		for {
			batch.expired = batch.expired[:0]
			err := db.View(func(tx *bbolt.Tx) error {
				t, err := beginTxn(tx, q.path)
				if err != nil {
					return err
				}
				return batch.scan(t, q.opts.Now())
			})
			if err != nil {
				return err
			}
			if len(batch.expired) > 0 {
				n, err := q.deleteExpired(db, batch.expired)
				if err != nil {
					return err
				}
				expiredTotal += n
			}
			if !batch.more {
				return nil
			}
		}
	})
	if err != nil {
		return nil, fmt.Errorf("read from %s: %w", q.path, err)
	}
	if expiredTotal > 0 {
		q.log.Info("deleted expired records", slog.Uint64("expired", expiredTotal))
	}
	return batch.out, nil
}

// readBatch is the state of one Read across its passes: each pass scans until the batch is
// full, the queue ends, or it has collected maxExpiredPerPass expired records to delete.
type readBatch struct {
	after      uint64 // the last sequence number scanned
	maxRecords int
	maxBytes   int
	usedBytes  int
	out        []Record
	expired    []uint64 // met in this pass, to be deleted
	more       bool     // the pass stopped only to delete expired records
}

func (b *readBatch) scan(t *txn, now time.Time) error {
	b.more = false
	c := t.records.Cursor()
	for k, v := c.Seek(seqKey(b.after + 1)); k != nil; k, v = c.Next() {
		if len(k) != 8 {
			return fmt.Errorf("%w: record key %x", ErrCorrupt, k)
		}
		seq := binary.BigEndian.Uint64(k)
		r, err := decodeRecord(seq, v)
		if err != nil {
			return fmt.Errorf("%w: record %d: %w", ErrCorrupt, seq, err)
		}
		if r.expired(now) {
			b.after = seq
			b.expired = append(b.expired, seq)
			if len(b.expired) == maxExpiredPerPass {
				b.more = true
				return nil
			}
			continue
		}
		size := int(r.size())
		if b.maxBytes > 0 && len(b.out) > 0 && b.usedBytes+size > b.maxBytes {
			return nil
		}
		b.after = seq
		r.Strikes = strikesOf(t.tx, k)
		b.out = append(b.out, r)
		b.usedBytes += size
		if len(b.out) == b.maxRecords {
			return nil
		}
	}
	return nil
}

// deleteExpired removes the given records and counts them in Stats.Expired.
func (q *Queue) deleteExpired(db *bbolt.DB, seqs []uint64) (uint64, error) {
	var n uint64
	err := q.updateDB(db, func(t *txn) error {
		var err error
		if n, err = q.deleteSeqs(t, seqs); err != nil {
			return err
		}
		return t.putU64(keyExpired, t.u64(keyExpired)+n)
	})
	if err != nil {
		return 0, fmt.Errorf("delete expired records: %w", err)
	}
	return n, nil
}

// Ack deletes the given sequence numbers (unknown ones are ignored) in one transaction.
// It is durable (fsync'd) when it returns.
func (q *Queue) Ack(seqs []uint64) error {
	if err := q.checkOpen(); err != nil {
		return err
	}
	if len(seqs) == 0 {
		return nil
	}
	sorted := slices.Clone(seqs)
	slices.Sort(sorted)
	sorted = slices.Compact(sorted)
	err := q.update(func(t *txn) error {
		_, err := q.deleteSeqs(t, sorted)
		return err
	})
	if err != nil {
		return fmt.Errorf("ack in %s: %w", q.path, err)
	}
	return nil
}

// deleteSeqs deletes the records that exist among seqs and keeps depth and bytes in step.
func (q *Queue) deleteSeqs(t *txn, seqs []uint64) (uint64, error) {
	depth, bytes := int64(t.u64(keyDepth)), int64(t.u64(keyBytes))
	var n uint64
	var key [8]byte
	for _, seq := range seqs {
		binary.BigEndian.PutUint64(key[:], seq)
		v := t.records.Get(key[:])
		if v == nil {
			continue
		}
		size, err := recordSize(v)
		if err != nil {
			return 0, fmt.Errorf("%w: record %d: %w", ErrCorrupt, seq, err)
		}
		if err := t.records.Delete(key[:]); err != nil {
			return 0, fmt.Errorf("delete record %d: %w", seq, err)
		}
		if err := deleteStrike(t, key[:]); err != nil {
			return 0, fmt.Errorf("delete strikes of record %d: %w", seq, err)
		}
		depth--
		bytes -= size
		n++
	}
	if n == 0 {
		return 0, nil
	}
	if err := t.putU64(keyDepth, uint64(depth)); err != nil {
		return 0, err
	}
	return n, t.putU64(keyBytes, uint64(bytes))
}
