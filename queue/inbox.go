package queue

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"
)

// The inbox holds messages a consumer received for the site (the uplink: PUBLISH packets the
// broker delivered from the site's subscriptions) until something has handled them. To the
// queue they are opaque: a topic, a payload, a QoS byte, a retain flag and the sender's 16-bit
// packet id, each stored as given. Three buckets, all created on first use:
//
//   - "inbox": 8-byte big-endian inbox id (assigned here, strictly increasing, never reused) to
//     the message (layout below);
//   - "inbox_ids": 2-byte sender packet id to the inbox id and a digest of the last message
//     stored under it, so a redelivery marked as one (Dup) is recognised even after the message
//     has been handled and deleted;
//   - "inbox_rel": 2-byte packet ids of QoS 2 messages stored and not yet released: until
//     ReleaseInbox, a message under such an id is the same message again.
var (
	bucketInbox    = []byte("inbox")
	bucketInboxIDs = []byte("inbox_ids")
	bucketInboxRel = []byte("inbox_rel")

	keyInboxLastID     = []byte("inbox_last_id")
	keyInboxCount      = []byte("inbox_count")
	keyInboxBytes      = []byte("inbox_bytes")
	keyInboxReceived   = []byte("inbox_received")
	keyInboxDuplicates = []byte("inbox_duplicates")
	keyInboxRefused    = []byte("inbox_refused")
	keyInboxFailures   = []byte("inbox_hook_failures")
)

// InboxMessage is one message in the inbox.
type InboxMessage struct {
	ID         uint64 // assigned by PutInbox; never reused
	Topic      string
	Payload    []byte
	QoS        byte
	Retain     bool
	PacketID   uint16    // the sender's packet id, as given
	ReceivedAt time.Time // when PutInbox stored it
	Attempts   int       // failed handling attempts (InboxFailed)
	LastError  string    // the last failure's reason, as given to InboxFailed
}

// InboxOutcome says what PutInbox did with a message.
type InboxOutcome int

const (
	// InboxStored: the message is in the inbox, committed and fsync'd.
	InboxStored InboxOutcome = iota
	// InboxDuplicate: the message was stored before (a redelivery); nothing changed but the
	// duplicates counter.
	InboxDuplicate
	// InboxFull: storing it would take the inbox past its byte limit; nothing was stored, the
	// refusal was counted.
	InboxFull
)

func (o InboxOutcome) String() string {
	switch o {
	case InboxStored:
		return "stored"
	case InboxDuplicate:
		return "duplicate"
	case InboxFull:
		return "full"
	}
	return fmt.Sprintf("InboxOutcome(%d)", int(o))
}

// InboxStats are the inbox's counters.
type InboxStats struct {
	Messages     int64  // messages in the inbox
	Bytes        int64  // their topic+payload bytes
	Received     uint64 // messages stored, ever
	Duplicates   uint64 // redeliveries recognised, ever
	Refused      uint64 // messages refused because the inbox was full, ever
	HookFailures uint64 // failed handling attempts (InboxFailed), ever
}

// Inbox value layout, version 1:
//
//	[0]     layout version (1)
//	[1:9]   ReceivedAt, Unix nanoseconds, big-endian int64
//	[9]     QoS
//	[10]    flags: bit 0 retain
//	[11:13] PacketID, big-endian
//	uvarint Attempts, uvarint len(LastError), LastError, uvarint len(Topic), Topic, then the
//	payload up to the end.
const (
	inboxVersion1  = 1
	inboxHeaderLen = 13
)

var errInboxValue = errors.New("bad inbox message")

func appendInbox(dst []byte, m *InboxMessage) []byte {
	dst = append(dst, inboxVersion1)
	dst = binary.BigEndian.AppendUint64(dst, uint64(m.ReceivedAt.UnixNano()))
	var flags byte
	if m.Retain {
		flags |= 1
	}
	dst = append(dst, m.QoS, flags)
	dst = binary.BigEndian.AppendUint16(dst, m.PacketID)
	dst = binary.AppendUvarint(dst, uint64(m.Attempts))
	dst = binary.AppendUvarint(dst, uint64(len(m.LastError)))
	dst = append(dst, m.LastError...)
	dst = binary.AppendUvarint(dst, uint64(len(m.Topic)))
	dst = append(dst, m.Topic...)
	return append(dst, m.Payload...)
}

func decodeInbox(id uint64, v []byte) (InboxMessage, error) {
	m := InboxMessage{ID: id}
	if len(v) < inboxHeaderLen {
		return m, errRecordShort
	}
	if v[0] != inboxVersion1 {
		return m, fmt.Errorf("%w %d", errRecordVersion, v[0])
	}
	m.ReceivedAt = time.Unix(0, int64(binary.BigEndian.Uint64(v[1:9])))
	m.QoS = v[9]
	if m.QoS > 2 || v[10]&^1 != 0 {
		return m, fmt.Errorf("%w: QoS %d, flags %#x", errInboxValue, m.QoS, v[10])
	}
	m.Retain = v[10]&1 != 0
	m.PacketID = binary.BigEndian.Uint16(v[11:13])
	rest := v[inboxHeaderLen:]
	attempts, k := binary.Uvarint(rest)
	if k <= 0 || attempts > 1<<31 {
		return m, fmt.Errorf("%w: attempts", errInboxValue)
	}
	m.Attempts = int(attempts)
	rest = rest[k:]
	str := func(what string) (string, error) {
		n, k := binary.Uvarint(rest)
		if k <= 0 || n > uint64(len(rest)-k) {
			return "", fmt.Errorf("%w: %s length", errInboxValue, what)
		}
		s := string(rest[k : k+int(n)])
		rest = rest[k+int(n):]
		return s, nil
	}
	var err error
	if m.LastError, err = str("last error"); err != nil {
		return m, err
	}
	if m.Topic, err = str("topic"); err != nil {
		return m, err
	}
	m.Payload = bytes.Clone(rest)
	return m, nil
}

func inboxDigest(topic string, payload []byte) []byte {
	h := sha256.New()
	h.Write(binary.AppendUvarint(nil, uint64(len(topic))))
	h.Write([]byte(topic))
	h.Write(payload)
	return h.Sum(nil)[:16]
}

func packetKey(id uint16) []byte { return binary.BigEndian.AppendUint16(nil, id) }

// PutInbox stores m (its ID, ReceivedAt, Attempts and LastError are set here) in one fsync'd
// transaction, unless it is a message stored before:
//
//   - a QoS 2 message under a packet id stored at QoS 2 and not yet released (ReleaseInbox) is
//     the same message again, whatever its content;
//   - a message the sender marked as a redelivery (dup) whose packet id, topic and payload
//     match the last message stored under that id is one too, even when that message has
//     since left the inbox.
//
// maxBytes (> 0) bounds the inbox's topic+payload bytes: a message that would take it past
// the bound is refused (InboxFull) and the messages already in the inbox are kept; the refusal
// is counted. A message larger than maxBytes on its own is always refused. It returns what it
// did and the message's inbox id (of the earlier copy for a duplicate, 0 when refused).
func (q *Queue) PutInbox(m InboxMessage, dup bool, maxBytes int64) (InboxOutcome, uint64, error) {
	if m.QoS > 2 {
		return 0, 0, fmt.Errorf("%w: QoS %d", ErrInvalidRecord, m.QoS)
	}
	now := q.opts.Now()
	digest := inboxDigest(m.Topic, m.Payload)
	pkey := packetKey(m.PacketID)
	size := int64(len(m.Topic) + len(m.Payload))
	var (
		outcome InboxOutcome
		id      uint64
		count   int64
		total   int64
	)
	err := q.update(func(t *txn) error {
		ids, err := t.tx.CreateBucketIfNotExists(bucketInboxIDs)
		if err != nil {
			return fmt.Errorf("create inbox id bucket: %w", err)
		}
		rel, err := t.tx.CreateBucketIfNotExists(bucketInboxRel)
		if err != nil {
			return fmt.Errorf("create inbox release bucket: %w", err)
		}
		prev := ids.Get(pkey)
		sameAsPrev := len(prev) == 8+len(digest) && bytes.Equal(prev[8:], digest)
		if (m.QoS == 2 && rel.Get(pkey) != nil) || (dup && sameAsPrev) {
			outcome = InboxDuplicate
			if len(prev) >= 8 {
				id = binary.BigEndian.Uint64(prev[:8])
			}
			return t.putU64(keyInboxDuplicates, t.u64(keyInboxDuplicates)+1)
		}
		count, total = int64(t.u64(keyInboxCount)), int64(t.u64(keyInboxBytes))
		if maxBytes > 0 && total+size > maxBytes {
			outcome = InboxFull
			return t.putU64(keyInboxRefused, t.u64(keyInboxRefused)+1)
		}
		inbox, err := t.tx.CreateBucketIfNotExists(bucketInbox)
		if err != nil {
			return fmt.Errorf("create inbox bucket: %w", err)
		}
		id = t.u64(keyInboxLastID) + 1
		m.ID, m.ReceivedAt, m.Attempts, m.LastError = id, now, 0, ""
		if err := inbox.Put(seqKey(id), appendInbox(nil, &m)); err != nil {
			return fmt.Errorf("store inbox message: %w", err)
		}
		if err := ids.Put(pkey, append(seqKey(id), digest...)); err != nil {
			return fmt.Errorf("store inbox packet id: %w", err)
		}
		if m.QoS == 2 {
			if err := rel.Put(pkey, []byte{}); err != nil {
				return fmt.Errorf("store inbox release state: %w", err)
			}
		}
		count++
		total += size
		outcome = InboxStored
		return putCounters(t, map[string]uint64{
			string(keyInboxLastID):   id,
			string(keyInboxCount):    uint64(count),
			string(keyInboxBytes):    uint64(total),
			string(keyInboxReceived): t.u64(keyInboxReceived) + 1,
		})
	})
	if err != nil {
		return 0, 0, fmt.Errorf("store inbox message in %s: %w", q.path, err)
	}
	switch outcome {
	case InboxStored:
		q.log.Debug("inbox message stored", slog.Uint64("id", id), slog.String("topic", m.Topic), slog.Int("bytes", len(m.Payload)))
	case InboxFull:
		q.log.Warn("inbox full: message refused, the inbox keeps the older ones",
			slog.String("topic", m.Topic), slog.Int64("bytes", size), slog.Int64("inbox_bytes", total),
			slog.Int64("inbox_messages", count), slog.Int64("max_bytes", maxBytes))
	}
	return outcome, id, nil
}

// ReleaseInbox forgets the QoS 2 state of packetID (the sender released it): a later message
// under that id is a new one. An id without state is not an error.
func (q *Queue) ReleaseInbox(packetID uint16) error {
	err := q.update(func(t *txn) error {
		rel := t.tx.Bucket(bucketInboxRel)
		if rel == nil || rel.Get(packetKey(packetID)) == nil {
			return nil
		}
		return rel.Delete(packetKey(packetID))
	})
	if err != nil {
		return fmt.Errorf("release inbox packet id %d in %s: %w", packetID, q.path, err)
	}
	return nil
}

// Inbox returns up to max messages (all when max <= 0) with ID > after, oldest first.
func (q *Queue) Inbox(after uint64, max int) ([]InboxMessage, error) {
	var out []InboxMessage
	err := q.view(func(t *txn) error {
		inbox := t.tx.Bucket(bucketInbox)
		if inbox == nil || after == ^uint64(0) {
			return nil
		}
		c := inbox.Cursor()
		for k, v := c.Seek(seqKey(after + 1)); k != nil; k, v = c.Next() {
			m, err := inboxAt(k, v)
			if err != nil {
				return err
			}
			out = append(out, m)
			if max > 0 && len(out) == max {
				return nil
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list inbox of %s: %w", q.path, err)
	}
	return out, nil
}

func inboxAt(k, v []byte) (InboxMessage, error) {
	if len(k) != 8 {
		return InboxMessage{}, fmt.Errorf("%w: inbox key %x", ErrCorrupt, k)
	}
	id := binary.BigEndian.Uint64(k)
	m, err := decodeInbox(id, v)
	if err != nil {
		return InboxMessage{}, fmt.Errorf("%w: inbox message %d: %w", ErrCorrupt, id, err)
	}
	return m, nil
}

// InboxGet returns the message id; ErrNotFound when it is not in the inbox.
func (q *Queue) InboxGet(id uint64) (InboxMessage, error) {
	var m InboxMessage
	err := q.view(func(t *txn) error {
		var v []byte
		if inbox := t.tx.Bucket(bucketInbox); inbox != nil {
			v = inbox.Get(seqKey(id))
		}
		if v == nil {
			return fmt.Errorf("%w: message %d is not in the inbox", ErrNotFound, id)
		}
		var err error
		m, err = inboxAt(seqKey(id), v)
		return err
	})
	if err != nil {
		return InboxMessage{}, fmt.Errorf("read inbox of %s: %w", q.path, err)
	}
	return m, nil
}

// AckInbox deletes the given messages from the inbox (they were handled), all or nothing, in
// one fsync'd transaction; an id that is not in the inbox gives ErrNotFound naming it. It
// returns how many were deleted.
func (q *Queue) AckInbox(ids ...uint64) (int, error) { return q.ackInbox(slices.Clone(ids), false) }

// AckAllInbox deletes every message in the inbox.
func (q *Queue) AckAllInbox() (int, error) { return q.ackInbox(nil, true) }

func (q *Queue) ackInbox(ids []uint64, all bool) (int, error) {
	n := 0
	err := q.update(func(t *txn) error {
		inbox := t.tx.Bucket(bucketInbox)
		if all {
			if inbox == nil {
				return nil
			}
			err := inbox.ForEach(func(k, _ []byte) error {
				if len(k) != 8 {
					return fmt.Errorf("%w: inbox key %x", ErrCorrupt, k)
				}
				ids = append(ids, binary.BigEndian.Uint64(k))
				return nil
			})
			if err != nil {
				return err
			}
		} else {
			slices.Sort(ids)
			ids = slices.Compact(ids)
		}
		count, total := t.u64(keyInboxCount), t.u64(keyInboxBytes)
		for _, id := range ids {
			var v []byte
			if inbox != nil {
				v = inbox.Get(seqKey(id))
			}
			if v == nil {
				return fmt.Errorf("%w: message %d is not in the inbox", ErrNotFound, id)
			}
			m, err := inboxAt(seqKey(id), v)
			if err != nil {
				return err
			}
			if err := inbox.Delete(seqKey(id)); err != nil {
				return fmt.Errorf("delete inbox message %d: %w", id, err)
			}
			size := uint64(len(m.Topic) + len(m.Payload))
			if count == 0 || total < size {
				return fmt.Errorf("%w: inbox counters below their messages", ErrCorrupt)
			}
			count--
			total -= size
		}
		n = len(ids)
		if n == 0 {
			return nil
		}
		return putCounters(t, map[string]uint64{string(keyInboxCount): count, string(keyInboxBytes): total})
	})
	if err != nil {
		return 0, fmt.Errorf("acknowledge inbox messages in %s: %w", q.path, err)
	}
	if n > 0 {
		q.log.Debug("inbox messages removed", slog.Int("messages", n))
	}
	return n, nil
}

// InboxFailed records one failed handling attempt of message id, with reason (cut to
// MaxReasonLen), and returns its attempts so far. The message stays in the inbox.
func (q *Queue) InboxFailed(id uint64, reason string) (int, error) {
	reason = cutReason(reason)
	attempts := 0
	err := q.update(func(t *txn) error {
		var v []byte
		inbox := t.tx.Bucket(bucketInbox)
		if inbox != nil {
			v = inbox.Get(seqKey(id))
		}
		if v == nil {
			return fmt.Errorf("%w: message %d is not in the inbox", ErrNotFound, id)
		}
		m, err := inboxAt(seqKey(id), v)
		if err != nil {
			return err
		}
		m.Attempts++
		m.LastError = reason
		attempts = m.Attempts
		if err := inbox.Put(seqKey(id), appendInbox(nil, &m)); err != nil {
			return fmt.Errorf("update inbox message %d: %w", id, err)
		}
		return t.putU64(keyInboxFailures, t.u64(keyInboxFailures)+1)
	})
	if err != nil {
		return 0, fmt.Errorf("record inbox failure in %s: %w", q.path, err)
	}
	return attempts, nil
}

// InboxStats reads the inbox's counters.
func (q *Queue) InboxStats() (InboxStats, error) {
	var s InboxStats
	err := q.view(func(t *txn) error {
		s = InboxStats{
			Messages:     int64(t.u64(keyInboxCount)),
			Bytes:        int64(t.u64(keyInboxBytes)),
			Received:     t.u64(keyInboxReceived),
			Duplicates:   t.u64(keyInboxDuplicates),
			Refused:      t.u64(keyInboxRefused),
			HookFailures: t.u64(keyInboxFailures),
		}
		return nil
	})
	if err != nil {
		return InboxStats{}, fmt.Errorf("inbox stats of %s: %w", q.path, err)
	}
	return s, nil
}

// checkInbox verifies every inbox message decodes and the counters match.
func checkInbox(t *txn) error {
	var n, size uint64
	if inbox := t.tx.Bucket(bucketInbox); inbox != nil {
		err := inbox.ForEach(func(k, v []byte) error {
			m, err := inboxAt(k, v)
			if err != nil {
				return err
			}
			if m.ID > t.u64(keyInboxLastID) {
				return fmt.Errorf("%w: inbox message %d above the inbox id counter", ErrCorrupt, m.ID)
			}
			n++
			size += uint64(len(m.Topic) + len(m.Payload))
			return nil
		})
		if err != nil {
			return err
		}
	}
	if got := t.u64(keyInboxCount); got != n {
		return fmt.Errorf("%w: inbox counter %d, %d messages in the inbox", ErrCorrupt, got, n)
	}
	if got := t.u64(keyInboxBytes); got != size {
		return fmt.Errorf("%w: inbox bytes counter %d, messages hold %d", ErrCorrupt, got, size)
	}
	return nil
}
