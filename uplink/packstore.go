package uplink

import (
	"errors"
	"fmt"
	"log/slog"

	"github.com/nbiot-uploader/uploader/queue"
	"github.com/nbiot-uploader/uploader/uplink/pack"
	"github.com/nbiot-uploader/uploader/uplink/session"
)

// PackMode says whether a window groups readings into packs.
type PackMode string

const (
	// PackNone (the default, also for "") sends one PUBLISH per reading.
	PackNone PackMode = "none"
	// PackDeflate sends packs (package uplink/pack), deflated when that pays.
	PackDeflate PackMode = "deflate"
)

// DefaultPackMaxBytes bounds a pack after compression. Measured
// (BenchmarkPackSize, README "Packed windows"): at 8 KiB deflate has
// reached within 2 % of its gain on noisy JSON readings and 14 % on the
// original's lines, while a window that dies mid-pack re-sends at most
// that much per pack in flight.
const DefaultPackMaxBytes = 8192

// Bounds of --pack-max-bytes: below 256 bytes a pack holds a handful of
// readings; above 256 KiB a pack outgrows what the session reads per batch.
const (
	MinPackMaxBytes = 256
	MaxPackMaxBytes = 256 << 10
)

// packCandidateRatio bounds the queued bytes read for one pack: a pack
// holds at most this many times its size in readings (deflate gets about
// 25x on repetitive sensor lines).
const packCandidateRatio = 40

// packStore is the session's Store when the window packs: it reads queued
// records and hands the session one session.Record per pack, whose Seq is
// its last reading's, so "after" keeps working. Acknowledging that Seq
// deletes every reading of the pack; quarantining or striking it does the
// same to each of them. Retained records, and a record no pack of
// maxBytes can hold, pass through unpacked, in queue order.
type packStore struct {
	q        *queue.Queue
	clientID string
	topic    string
	maxBytes int
	log      *slog.Logger

	enc     pack.Encoder
	members map[uint64][]uint64 // a pack's Seq -> its readings' seqs, until acknowledged
	cand    []pack.Reading

	packs, packed int // packs made and readings in them
	lastN         int // readings in the last pack: the first size Fit tries next

	// inbound stores what the broker delivers (session.Inbox): packing
	// changes the uplink only.
	inbound queueStore
}

// StoreInbound forwards a downlink delivery to the queue's inbox.
func (s *packStore) StoreInbound(m session.Inbound) (session.InboundOutcome, error) {
	return s.inbound.StoreInbound(m)
}

// ReleaseInbound forwards a released QoS 2 packet id to the queue's inbox.
func (s *packStore) ReleaseInbound(packetID uint16) error { return s.inbound.ReleaseInbound(packetID) }

func newPackStore(q *queue.Queue, clientID, topic string, maxBytes int, log *slog.Logger) *packStore {
	return &packStore{q: q, clientID: clientID, topic: topic, maxBytes: maxBytes, log: log, members: make(map[uint64][]uint64)}
}

// Read returns up to maxRecords packs and unpacked records (about maxBytes)
// after the given seq.
func (s *packStore) Read(after uint64, maxRecords, maxBytes int) ([]session.Record, error) {
	candBytes := s.maxBytes * packCandidateRatio
	candRecords := max(maxRecords, candBytes/16)
	recs, err := s.q.Read(after, candRecords, candBytes)
	if err != nil {
		return nil, err
	}
	// Did the read stop at its bounds (more may be queued), or at the end?
	full := len(recs) >= candRecords || queuedBytes(recs) >= candBytes
	var out []session.Record
	outBytes := 0
	for i := 0; i < len(recs) && len(out) < maxRecords && (maxBytes <= 0 || outBytes < maxBytes); {
		if recs[i].Retain {
			out = append(out, plainRecord(recs[i]))
			outBytes += len(recs[i].Payload)
			i++
			continue
		}
		j := i
		for j < len(recs) && !recs[j].Retain {
			j++
		}
		p, n, err := s.fit(recs[i:j])
		if err != nil {
			return nil, err
		}
		if n == 0 {
			// Larger than any pack: it goes on its own topic.
			out = append(out, plainRecord(recs[i]))
			outBytes += len(recs[i].Payload)
			i++
			continue
		}
		if i+n == len(recs) && full && len(out) > 0 {
			// This pack might hold more readings than were read: leave it
			// to the next Read, which starts with it.
			break
		}
		out = append(out, p)
		outBytes += len(p.Payload)
		i += n
	}
	return out, nil
}

// fit makes the largest pack of a prefix of recs.
func (s *packStore) fit(recs []queue.Record) (session.Record, int, error) {
	s.cand = s.cand[:0]
	for _, r := range recs {
		s.cand = append(s.cand, pack.Reading{Seq: r.Seq, Time: r.EnqueuedAt, Topic: r.Topic, QoS: r.QoS, Payload: r.Payload})
	}
	b, n, err := s.enc.Fit(nil, s.clientID, s.cand, pack.Deflate, s.maxBytes, s.lastN+s.lastN/8)
	clear(s.cand) // the payloads belong to recs
	if err != nil || n == 0 {
		return session.Record{}, 0, err
	}
	seqs := make([]uint64, n)
	rec := session.Record{Topic: s.topic, Payload: b, ContentType: pack.ContentType}
	for k, r := range recs[:n] {
		seqs[k] = r.Seq
		rec.QoS = max(rec.QoS, r.QoS)
		rec.Strikes = max(rec.Strikes, r.Strikes)
	}
	rec.Seq = seqs[n-1]
	s.members[rec.Seq] = seqs
	s.packs++
	s.packed += n
	s.lastN = n
	return rec, n, nil
}

func queuedBytes(recs []queue.Record) int {
	n := 0
	for _, r := range recs {
		n += len(r.Topic) + len(r.Payload)
	}
	return n
}

func plainRecord(r queue.Record) session.Record {
	return session.Record{Seq: r.Seq, Topic: r.Topic, Payload: r.Payload, QoS: r.QoS, Retain: r.Retain, ExpiresAt: r.ExpiresAt, Strikes: r.Strikes}
}

// expand replaces each pack's Seq by its readings' seqs.
func (s *packStore) expand(seqs []uint64) []uint64 {
	var out []uint64
	for _, q := range seqs {
		if m, ok := s.members[q]; ok {
			out = append(out, m...)
		} else {
			out = append(out, q)
		}
	}
	return out
}

// Ack deletes every reading of each acknowledged pack (and each
// acknowledged unpacked record) in one transaction.
func (s *packStore) Ack(seqs []uint64) error {
	if err := s.q.Ack(s.expand(seqs)); err != nil {
		return err
	}
	for _, q := range seqs {
		delete(s.members, q)
	}
	return nil
}

// Quarantine moves every reading of a refused pack into the quarantine,
// with the reason and the pack named.
func (s *packStore) Quarantine(seq uint64, reason string) error {
	m, isPack := s.members[seq]
	if !isPack {
		return queueStore{q: s.q}.Quarantine(seq, reason)
	}
	why := fmt.Sprintf("in the pack ending at seq %d: %s", seq, reason)
	for _, q := range m {
		if err := s.q.Quarantine(q, why); err != nil && !errors.Is(err, queue.ErrNotFound) {
			return err
		}
	}
	delete(s.members, seq)
	return nil
}

// Strike marks every reading of a suspect pack, so the next window sends
// the pack (re-made from the same readings) in isolation.
func (s *packStore) Strike(seq uint64) error {
	for _, q := range s.expand([]uint64{seq}) {
		if err := (queueStore{q: s.q}).Strike(q); err != nil {
			return err
		}
	}
	return nil
}
