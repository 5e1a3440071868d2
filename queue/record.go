package queue

import (
	"encoding/binary"
	"fmt"
	"time"
)

// Record is one stored reading. The queue treats Topic and Payload as opaque bytes.
type Record struct {
	Seq        uint64    // assigned by Enqueue
	Topic      string    // must not be empty
	Payload    []byte    // may be empty
	QoS        byte      // 0, 1 or 2
	Retain     bool      // passed through to the consumer
	EnqueuedAt time.Time // set by Enqueue when zero
	ExpiresAt  time.Time // zero = never expires
	// Strikes is how often a consumer marked the record suspect (Queue.Strike); set by Read,
	// ignored by Enqueue.
	Strikes int
}

// size is what counts against Options.MaxBytes and Stats.Bytes.
func (r *Record) size() int64 { return int64(len(r.Topic) + len(r.Payload)) }

func (r *Record) validate() error {
	if r.Topic == "" {
		return fmt.Errorf("%w: empty topic", ErrInvalidRecord)
	}
	if r.QoS > 2 {
		return fmt.Errorf("%w: qos %d, want 0, 1 or 2", ErrInvalidRecord, r.QoS)
	}
	return nil
}

// expired reports whether the record must not be sent at now.
func (r *Record) expired(now time.Time) bool {
	return !r.ExpiresAt.IsZero() && !now.Before(r.ExpiresAt)
}

// Record value layout, version 1 (the key is the 8-byte big-endian Seq):
//
//	[0]     layout version (1)
//	[1]     flags: bits 0-1 QoS, bit 2 retain, bit 3 expiry present
//	[2:10]  EnqueuedAt, Unix nanoseconds, big-endian int64
//	[10:18] ExpiresAt, Unix nanoseconds, only when bit 3 is set
//	uvarint topic length, topic bytes, then the payload up to the end of the value.
const (
	recordVersion1 = 1

	flagQoSMask = 0x03
	flagRetain  = 0x04
	flagExpiry  = 0x08
	flagsKnown  = flagQoSMask | flagRetain | flagExpiry

	recordHeaderLen = 10
)

func appendRecord(dst []byte, r *Record) []byte {
	flags := r.QoS & flagQoSMask
	if r.Retain {
		flags |= flagRetain
	}
	if !r.ExpiresAt.IsZero() {
		flags |= flagExpiry
	}
	dst = append(dst, recordVersion1, flags)
	dst = binary.BigEndian.AppendUint64(dst, uint64(r.EnqueuedAt.UnixNano()))
	if !r.ExpiresAt.IsZero() {
		dst = binary.BigEndian.AppendUint64(dst, uint64(r.ExpiresAt.UnixNano()))
	}
	dst = binary.AppendUvarint(dst, uint64(len(r.Topic)))
	dst = append(dst, r.Topic...)
	return append(dst, r.Payload...)
}

// decodeRecord parses a stored value. The result never aliases v, because bbolt's values
// die with their transaction.
func decodeRecord(seq uint64, v []byte) (Record, error) {
	var r Record
	if len(v) < recordHeaderLen {
		return r, errRecordShort
	}
	if v[0] != recordVersion1 {
		return r, fmt.Errorf("%w %d", errRecordVersion, v[0])
	}
	flags := v[1]
	if flags&^flagsKnown != 0 || flags&flagQoSMask > 2 {
		return r, fmt.Errorf("%w %#x", errRecordFlags, flags)
	}
	r.Seq = seq
	r.QoS = flags & flagQoSMask
	r.Retain = flags&flagRetain != 0
	r.EnqueuedAt = time.Unix(0, int64(binary.BigEndian.Uint64(v[2:10])))
	rest := v[recordHeaderLen:]
	if flags&flagExpiry != 0 {
		if len(rest) < 8 {
			return Record{}, errRecordShort
		}
		r.ExpiresAt = time.Unix(0, int64(binary.BigEndian.Uint64(rest[:8])))
		rest = rest[8:]
	}
	n, k := binary.Uvarint(rest)
	if k <= 0 || n == 0 || n > uint64(len(rest)-k) || (k > 1 && rest[k-1] == 0) {
		// A padded (non-minimal) length would decode to a record that re-encodes differently.
		return Record{}, errRecordTopic
	}
	rest = rest[k:]
	r.Topic = string(rest[:n])
	if len(rest) > int(n) {
		r.Payload = append([]byte(nil), rest[n:]...)
	}
	return r, nil
}

// recordSize reads only what Stats.Bytes accounting needs, without copying the value.
func recordSize(v []byte) (int64, error) {
	if len(v) < recordHeaderLen || v[0] != recordVersion1 {
		return 0, errRecordShort
	}
	off := recordHeaderLen
	if v[1]&flagExpiry != 0 {
		off += 8
	}
	if off > len(v) {
		return 0, errRecordShort
	}
	n, k := binary.Uvarint(v[off:])
	if k <= 0 || n > uint64(len(v)-off-k) {
		return 0, errRecordTopic
	}
	return int64(len(v) - off - k), nil
}

// enqueuedAtOf reads the enqueue time without decoding the whole value.
func enqueuedAtOf(v []byte) (time.Time, error) {
	if len(v) < recordHeaderLen || v[0] != recordVersion1 {
		return time.Time{}, errRecordShort
	}
	return time.Unix(0, int64(binary.BigEndian.Uint64(v[2:10]))), nil
}

func seqKey(seq uint64) []byte { return binary.BigEndian.AppendUint64(make([]byte, 0, 8), seq) }
