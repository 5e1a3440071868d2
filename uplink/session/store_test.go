package session_test

import (
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/nbiot-uploader/uploader/uplink/session"
)

// memStore is an in-memory Store that remembers how it was used, so tests can
// check that only acknowledged records were deleted.
type memStore struct {
	mu       sync.Mutex
	recs     []session.Record // ascending Seq
	reads    int
	ackCalls int
	deleted  []uint64
	unknown  []uint64 // acked seqs that were not (or no longer) stored
	readErr  error
	ackErr   error
	// quarantined maps a quarantined seq to its reason; struck counts
	// Strike calls per seq (Read reports them in Record.Strikes).
	quarantined map[uint64]string
	struck      map[uint64]int
	quarErr     error
}

func newMemStore(recs []session.Record) *memStore {
	return &memStore{recs: slices.Clone(recs), quarantined: map[uint64]string{}, struck: map[uint64]int{}}
}

func (m *memStore) Quarantine(seq uint64, reason string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.quarErr != nil {
		return m.quarErr
	}
	i := slices.IndexFunc(m.recs, func(r session.Record) bool { return r.Seq == seq })
	if i < 0 {
		return nil
	}
	m.recs = slices.Delete(m.recs, i, i+1)
	m.quarantined[seq] = reason
	delete(m.struck, seq)
	return nil
}

func (m *memStore) Strike(seq uint64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if slices.ContainsFunc(m.recs, func(r session.Record) bool { return r.Seq == seq }) {
		m.struck[seq]++
	}
	return nil
}

// quarantinedSeqs returns the quarantined sequence numbers, ascending.
func (m *memStore) quarantinedSeqs() []uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []uint64
	for seq := range m.quarantined {
		out = append(out, seq)
	}
	slices.Sort(out)
	return out
}

func (m *memStore) reason(seq uint64) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.quarantined[seq]
}

func (m *memStore) Read(after uint64, maxRecords, maxBytes int) ([]session.Record, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.reads++
	if m.readErr != nil {
		return nil, m.readErr
	}
	var out []session.Record
	bytes := 0
	for _, r := range m.recs {
		if r.Seq <= after {
			continue
		}
		if len(out) == maxRecords || (len(out) > 0 && bytes+len(r.Payload) > maxBytes) {
			break
		}
		r.Strikes = m.struck[r.Seq]
		out = append(out, r)
		bytes += len(r.Payload) + len(r.Topic)
	}
	return out, nil
}

func (m *memStore) Ack(seqs []uint64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.ackCalls++
	if m.ackErr != nil {
		return m.ackErr
	}
	for _, seq := range seqs {
		i := slices.IndexFunc(m.recs, func(r session.Record) bool { return r.Seq == seq })
		if i < 0 {
			m.unknown = append(m.unknown, seq)
			continue
		}
		m.recs = slices.Delete(m.recs, i, i+1)
		m.deleted = append(m.deleted, seq)
		delete(m.struck, seq)
	}
	return nil
}

// remaining returns the sequence numbers still stored.
func (m *memStore) remaining() []uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]uint64, len(m.recs))
	for i, r := range m.recs {
		out[i] = r.Seq
	}
	return out
}

func (m *memStore) deletedSeqs() []uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.deleted)
}

// checkClean fails the test if a record was acknowledged twice or unknown.
func (m *memStore) checkClean(t *testing.T) {
	t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.unknown) > 0 {
		t.Errorf("Ack of seqs not in the store (double delete?): %v", m.unknown)
	}
}

// makeRecords returns n records with seqs 1..n spread over the topics.
func makeRecords(n int, qos byte, topics ...string) []session.Record {
	if len(topics) == 0 {
		topics = []string{"site/1/temperature"}
	}
	recs := make([]session.Record, n)
	for i := range recs {
		recs[i] = session.Record{
			Seq:     uint64(i + 1),
			Topic:   topics[i%len(topics)],
			Payload: fmt.Appendf(nil, `{"i":%d,"v":21.5}`, i+1),
			QoS:     qos,
		}
	}
	return recs
}

func seqsOf(recs []session.Record) []uint64 {
	out := make([]uint64, len(recs))
	for i, r := range recs {
		out[i] = r.Seq
	}
	return out
}
