package queue

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"
	"unicode/utf8"

	"go.etcd.io/bbolt"
)

// The quarantine holds records a consumer found it can never deliver (the consumer says why,
// in an opaque reason). They leave the records bucket, so they no longer block or count as
// queued, but they are kept, with their sequence number, until an operator retries or drops
// them. Strikes are per-record marks a consumer sets when it suspects a record without proof;
// they live beside the records and die with them.
//
// Both buckets are created on first use, so files written before them need no migration and
// older programs ignore them.
var (
	bucketQuarantine = []byte("quarantine")
	bucketStrikes    = []byte("strikes")

	keyQuarantined = []byte("quarantined")
)

// ErrNotFound is returned when a sequence number names no record where the call looks for it
// (the queue for Quarantine and Strike, the quarantine for RetryQuarantined and
// DropQuarantined). The wrapping message names the sequence number.
var ErrNotFound = errors.New("no such record")

// MaxReasonLen bounds the reason stored with a quarantined record; a longer one is cut.
const MaxReasonLen = 1024

// QuarantinedRecord is a record moved out of the queue by Quarantine.
type QuarantinedRecord struct {
	Record
	Reason        string    // as given to Quarantine
	QuarantinedAt time.Time // when it was moved
}

// Quarantine value layout, version 1 (the key is the 8-byte big-endian Seq):
//
//	[0]    layout version (1)
//	[1:9]  QuarantinedAt, Unix nanoseconds, big-endian int64
//	uvarint reason length, reason bytes, then the record value exactly as it was stored in
//	the records bucket (record.go).
const (
	quarantineVersion1  = 1
	quarantineHeaderLen = 9
)

func appendQuarantined(dst []byte, at time.Time, reason string, recordValue []byte) []byte {
	dst = append(dst, quarantineVersion1)
	dst = binary.BigEndian.AppendUint64(dst, uint64(at.UnixNano()))
	dst = binary.AppendUvarint(dst, uint64(len(reason)))
	dst = append(dst, reason...)
	return append(dst, recordValue...)
}

// splitQuarantined parses a quarantine value into its header and the stored record value
// (which aliases v).
func splitQuarantined(v []byte) (at time.Time, reason string, recordValue []byte, err error) {
	if len(v) < quarantineHeaderLen+1 {
		return at, "", nil, errRecordShort
	}
	if v[0] != quarantineVersion1 {
		return at, "", nil, fmt.Errorf("%w %d", errRecordVersion, v[0])
	}
	at = time.Unix(0, int64(binary.BigEndian.Uint64(v[1:9])))
	rest := v[quarantineHeaderLen:]
	n, k := binary.Uvarint(rest)
	if k <= 0 || n > uint64(len(rest)-k) || (k > 1 && rest[k-1] == 0) {
		return time.Time{}, "", nil, errQuarantineReason
	}
	rest = rest[k:]
	return at, string(rest[:n]), rest[n:], nil
}

func decodeQuarantined(seq uint64, v []byte) (QuarantinedRecord, error) {
	at, reason, rv, err := splitQuarantined(v)
	if err != nil {
		return QuarantinedRecord{}, err
	}
	r, err := decodeRecord(seq, rv)
	if err != nil {
		return QuarantinedRecord{}, err
	}
	return QuarantinedRecord{Record: r, Reason: reason, QuarantinedAt: at}, nil
}

// cutReason bounds a reason to MaxReasonLen bytes without splitting a UTF-8 sequence.
func cutReason(reason string) string {
	if len(reason) <= MaxReasonLen {
		return reason
	}
	cut := MaxReasonLen
	for cut > 0 && !utf8.RuneStart(reason[cut]) {
		cut--
	}
	return reason[:cut]
}

// Quarantine moves the record seq from the queue into the quarantine, with reason and the
// current time, in one fsync'd transaction: the record is in exactly one of the two whatever
// happens. The record keeps its sequence number, topic, payload, QoS, retain flag, enqueue and
// expiry times. A seq that is not queued (already acknowledged, dropped or expired) gives
// ErrNotFound and changes nothing.
//
// Quarantined records do not count against MaxRecords and MaxBytes, are never sent, never
// expire and are never dropped by the DropOldest policy; Stats.Quarantined counts them.
func (q *Queue) Quarantine(seq uint64, reason string) error {
	reason = cutReason(reason)
	now := q.opts.Now()
	err := q.update(func(t *txn) error {
		key := seqKey(seq)
		v := t.records.Get(key)
		if v == nil {
			return fmt.Errorf("%w: seq %d is not queued", ErrNotFound, seq)
		}
		if _, err := decodeRecord(seq, v); err != nil {
			return fmt.Errorf("%w: record %d: %w", ErrCorrupt, seq, err)
		}
		quar, err := t.tx.CreateBucketIfNotExists(bucketQuarantine)
		if err != nil {
			return fmt.Errorf("create quarantine bucket: %w", err)
		}
		value := appendQuarantined(nil, now, reason, v)
		if err := quar.Put(key, value); err != nil {
			return fmt.Errorf("quarantine record %d: %w", seq, err)
		}
		if _, err := q.deleteSeqs(t, []uint64{seq}); err != nil {
			return err
		}
		return t.putU64(keyQuarantined, t.u64(keyQuarantined)+1)
	})
	if err != nil {
		return fmt.Errorf("quarantine in %s: %w", q.path, err)
	}
	q.log.Warn("record quarantined", slog.Uint64("seq", seq), slog.String("reason", reason))
	return nil
}

// Quarantined returns up to max quarantined records (all when max <= 0) with Seq > after,
// lowest sequence number first.
func (q *Queue) Quarantined(after uint64, max int) ([]QuarantinedRecord, error) {
	var out []QuarantinedRecord
	err := q.view(func(t *txn) error {
		quar := t.tx.Bucket(bucketQuarantine)
		if quar == nil || after == ^uint64(0) {
			return nil
		}
		c := quar.Cursor()
		for k, v := c.Seek(seqKey(after + 1)); k != nil; k, v = c.Next() {
			if len(k) != 8 {
				return fmt.Errorf("%w: quarantine key %x", ErrCorrupt, k)
			}
			seq := binary.BigEndian.Uint64(k)
			r, err := decodeQuarantined(seq, v)
			if err != nil {
				return fmt.Errorf("%w: quarantined record %d: %w", ErrCorrupt, seq, err)
			}
			out = append(out, r)
			if max > 0 && len(out) == max {
				return nil
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list quarantine of %s: %w", q.path, err)
	}
	return out, nil
}

// RetryQuarantined moves the given quarantined records back into the queue under their own
// sequence numbers, so the next window sends them again (a record whose ExpiresAt has passed is
// then deleted as expired). It is all or nothing, in one fsync'd transaction: a seq that is not
// quarantined gives ErrNotFound naming it, and a retry that would take the queue past
// MaxRecords or MaxBytes gives ErrFull under either policy, because a retry never makes the
// queue drop a record. It returns how many records went back.
func (q *Queue) RetryQuarantined(seqs ...uint64) (int, error) {
	return q.retry(slices.Clone(seqs), false)
}

// RetryAllQuarantined is RetryQuarantined for every quarantined record.
func (q *Queue) RetryAllQuarantined() (int, error) { return q.retry(nil, true) }

// chosenSeqs is every quarantined seq with all, else seqs sorted without
// repeats.
func chosenSeqs(quar *bbolt.Bucket, seqs []uint64, all bool) ([]uint64, error) {
	if all {
		return quarantinedSeqs(quar)
	}
	slices.Sort(seqs)
	return slices.Compact(seqs), nil
}

func (q *Queue) retry(seqs []uint64, all bool) (int, error) {
	n := 0
	err := q.update(func(t *txn) error {
		quar := t.tx.Bucket(bucketQuarantine)
		seqs, err := chosenSeqs(quar, seqs, all)
		if err != nil {
			return err
		}
		if len(seqs) == 0 {
			return nil
		}
		depth, bytes := int64(t.u64(keyDepth)), int64(t.u64(keyBytes))
		values := make([][]byte, len(seqs))
		for i, seq := range seqs {
			var v []byte
			if quar != nil {
				v = quar.Get(seqKey(seq))
			}
			if v == nil {
				return fmt.Errorf("%w: seq %d is not quarantined", ErrNotFound, seq)
			}
			_, _, rv, err := splitQuarantined(v)
			if err == nil {
				_, err = decodeRecord(seq, rv)
			}
			if err != nil {
				return fmt.Errorf("%w: quarantined record %d: %w", ErrCorrupt, seq, err)
			}
			size, err := recordSize(rv)
			if err != nil {
				return fmt.Errorf("%w: quarantined record %d: %w", ErrCorrupt, seq, err)
			}
			// bbolt keeps what Put is given until commit and the value it returned dies with
			// the deletion below: copy it.
			values[i] = slices.Clone(rv)
			depth++
			bytes += size
		}
		if q.opts.MaxRecords > 0 && depth > q.opts.MaxRecords {
			return fmt.Errorf("%w: %d records back would make %d, past MaxRecords %d", ErrFull, len(seqs), depth, q.opts.MaxRecords)
		}
		if q.opts.MaxBytes > 0 && bytes > q.opts.MaxBytes {
			return fmt.Errorf("%w: %d records back would make %d bytes, past MaxBytes %d", ErrFull, len(seqs), bytes, q.opts.MaxBytes)
		}
		for i, seq := range seqs {
			key := seqKey(seq)
			if t.records.Get(key) != nil {
				return fmt.Errorf("%w: seq %d is both queued and quarantined", ErrCorrupt, seq)
			}
			if err := t.records.Put(key, values[i]); err != nil {
				return fmt.Errorf("restore record %d: %w", seq, err)
			}
			if err := quar.Delete(key); err != nil {
				return fmt.Errorf("unquarantine record %d: %w", seq, err)
			}
		}
		n = len(seqs)
		return putCounters(t, map[string]uint64{
			string(keyDepth):       uint64(depth),
			string(keyBytes):       uint64(bytes),
			string(keyQuarantined): t.u64(keyQuarantined) - uint64(n),
		})
	})
	if err != nil {
		return 0, fmt.Errorf("retry quarantined records in %s: %w", q.path, err)
	}
	if n > 0 {
		q.log.Info("quarantined records back in the queue", slog.Int("records", n))
	}
	return n, nil
}

// DropQuarantined deletes the given quarantined records for good, all or nothing, in one
// fsync'd transaction; a seq that is not quarantined gives ErrNotFound naming it. It returns
// how many were deleted.
func (q *Queue) DropQuarantined(seqs ...uint64) (int, error) {
	return q.drop(slices.Clone(seqs), false)
}

// DropAllQuarantined deletes every quarantined record.
func (q *Queue) DropAllQuarantined() (int, error) { return q.drop(nil, true) }

func (q *Queue) drop(seqs []uint64, all bool) (int, error) {
	n := 0
	err := q.update(func(t *txn) error {
		quar := t.tx.Bucket(bucketQuarantine)
		seqs, err := chosenSeqs(quar, seqs, all)
		if err != nil {
			return err
		}
		for _, seq := range seqs {
			key := seqKey(seq)
			if quar == nil || quar.Get(key) == nil {
				return fmt.Errorf("%w: seq %d is not quarantined", ErrNotFound, seq)
			}
			if err := quar.Delete(key); err != nil {
				return fmt.Errorf("drop quarantined record %d: %w", seq, err)
			}
		}
		n = len(seqs)
		if n == 0 {
			return nil
		}
		return t.putU64(keyQuarantined, t.u64(keyQuarantined)-uint64(n))
	})
	if err != nil {
		return 0, fmt.Errorf("drop quarantined records in %s: %w", q.path, err)
	}
	if n > 0 {
		q.log.Info("quarantined records dropped", slog.Int("records", n))
	}
	return n, nil
}

func quarantinedSeqs(quar *bbolt.Bucket) ([]uint64, error) {
	if quar == nil {
		return nil, nil
	}
	var seqs []uint64
	err := quar.ForEach(func(k, _ []byte) error {
		if len(k) != 8 {
			return fmt.Errorf("%w: quarantine key %x", ErrCorrupt, k)
		}
		seqs = append(seqs, binary.BigEndian.Uint64(k))
		return nil
	})
	return seqs, err
}

// Strike marks the queued record seq as suspect, durably, and returns how many strikes it now
// has. A consumer strikes a record it suspects of a failure it cannot prove (the uplink: the
// broker closed the connection over a malformed packet while the record was the oldest it had
// not acknowledged); Read reports the count in Record.Strikes. The marks leave with the record
// (Ack, expiry, the DropOldest policy, Quarantine). A seq that is not queued gives ErrNotFound.
func (q *Queue) Strike(seq uint64) (int, error) {
	var n uint64
	err := q.update(func(t *txn) error {
		key := seqKey(seq)
		if t.records.Get(key) == nil {
			return fmt.Errorf("%w: seq %d is not queued", ErrNotFound, seq)
		}
		strikes, err := t.tx.CreateBucketIfNotExists(bucketStrikes)
		if err != nil {
			return fmt.Errorf("create strikes bucket: %w", err)
		}
		n = strikeCount(strikes.Get(key)) + 1
		return strikes.Put(key, binary.AppendUvarint(nil, n))
	})
	if err != nil {
		return 0, fmt.Errorf("strike record in %s: %w", q.path, err)
	}
	q.log.Warn("record marked suspect", slog.Uint64("seq", seq), slog.Uint64("strikes", n))
	return int(n), nil
}

func strikeCount(v []byte) uint64 {
	n, k := binary.Uvarint(v)
	if k <= 0 {
		return 0
	}
	return n
}

// deleteStrike removes seq's strike mark, if any. It runs inside deletions, so it stays cheap
// when there are no strikes at all.
func deleteStrike(t *txn, key []byte) error {
	strikes := t.tx.Bucket(bucketStrikes)
	if strikes == nil || strikes.Get(key) == nil {
		return nil
	}
	return strikes.Delete(key)
}

// strikesOf returns the strike count of seq during a read; 0 without a mark.
func strikesOf(tx *bbolt.Tx, key []byte) int {
	strikes := tx.Bucket(bucketStrikes)
	if strikes == nil {
		return 0
	}
	return int(strikeCount(strikes.Get(key)))
}

// checkQuarantine verifies every quarantined record decodes, the counter matches, and no
// sequence number is both queued and quarantined or has a strike without a record.
func checkQuarantine(t *txn) error {
	var n uint64
	if quar := t.tx.Bucket(bucketQuarantine); quar != nil {
		err := quar.ForEach(func(k, v []byte) error {
			if len(k) != 8 {
				return fmt.Errorf("%w: quarantine key %x", ErrCorrupt, k)
			}
			seq := binary.BigEndian.Uint64(k)
			if _, err := decodeQuarantined(seq, v); err != nil {
				return fmt.Errorf("%w: quarantined record %d: %w", ErrCorrupt, seq, err)
			}
			if t.records.Get(k) != nil {
				return fmt.Errorf("%w: record %d is both queued and quarantined", ErrCorrupt, seq)
			}
			if seq > t.u64(keyLastSeq) {
				return fmt.Errorf("%w: quarantined record %d above the sequence counter", ErrCorrupt, seq)
			}
			n++
			return nil
		})
		if err != nil {
			return err
		}
	}
	if got := t.u64(keyQuarantined); got != n {
		return fmt.Errorf("%w: quarantined counter %d, %d records quarantined", ErrCorrupt, got, n)
	}
	if strikes := t.tx.Bucket(bucketStrikes); strikes != nil {
		return strikes.ForEach(func(k, _ []byte) error {
			if t.records.Get(k) == nil {
				return fmt.Errorf("%w: strike for record %x, which is not queued", ErrCorrupt, k)
			}
			return nil
		})
	}
	return nil
}
