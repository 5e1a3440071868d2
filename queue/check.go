package queue

import (
	"encoding/binary"
	"errors"
	"fmt"

	"go.etcd.io/bbolt"
)

// Check verifies the whole file: every record decodes, the depth, bytes and sequence counters
// match the records, and bbolt's consistency check (page reachability, freelist, key order)
// passes. It reads the whole file, so its cost grows with the depth: it is meant for
// `status --check`, tests and diagnosis, not for every call. A failure wraps ErrCorrupt.
func (q *Queue) Check() error {
	// Opened writable so bbolt loads its freelist here, where a fault is caught, rather than
	// inside the goroutine tx.Check starts, where a panic would kill the process.
	err := q.run(false, func(db *bbolt.DB) error {
		return db.View(func(tx *bbolt.Tx) error {
			t, err := beginTxn(tx, q.path)
			if err != nil {
				return err
			}
			// Walk every page of both buckets in this goroutine first: bbolt asserts (panics) on
			// damaged pages, and only here can that be recovered and reported.
			if err := checkRecords(t); err != nil {
				return err
			}
			if err := t.meta.ForEach(func(k, v []byte) error { return nil }); err != nil {
				return err
			}
			if err := checkQuarantine(t); err != nil {
				return err
			}
			if err := checkInbox(t); err != nil {
				return err
			}
			var errs []error
			for err := range tx.Check() {
				errs = append(errs, err)
			}
			if len(errs) > 0 {
				return fmt.Errorf("%w: bbolt check: %w", ErrCorrupt, errors.Join(errs...))
			}
			return nil
		})
	})
	if err != nil {
		return fmt.Errorf("check %s: %w", q.path, err)
	}
	return nil
}

func checkRecords(t *txn) error {
	var depth, bytes int64
	var maxSeq uint64
	c := t.records.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		if len(k) != 8 {
			return fmt.Errorf("%w: record key %x", ErrCorrupt, k)
		}
		seq := binary.BigEndian.Uint64(k)
		r, err := decodeRecord(seq, v)
		if err != nil {
			return fmt.Errorf("%w: record %d: %w", ErrCorrupt, seq, err)
		}
		depth++
		bytes += r.size()
		maxSeq = seq
	}
	if got := int64(t.u64(keyDepth)); got != depth {
		return fmt.Errorf("%w: depth counter %d, %d records stored", ErrCorrupt, got, depth)
	}
	if got := int64(t.u64(keyBytes)); got != bytes {
		return fmt.Errorf("%w: bytes counter %d, %d bytes stored", ErrCorrupt, got, bytes)
	}
	if last := t.u64(keyLastSeq); last < maxSeq {
		return fmt.Errorf("%w: sequence counter %d below stored record %d", ErrCorrupt, last, maxSeq)
	}
	return nil
}
