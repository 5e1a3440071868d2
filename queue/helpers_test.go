package queue

import (
	"errors"
	"path/filepath"
	"testing"
	"time"
)

// mustOpen opens a fresh queue in t.TempDir() and, at cleanup, checks its consistency.
func mustOpen(t testing.TB, opts *Options) *Queue {
	t.Helper()
	return mustOpenPath(t, filepath.Join(t.TempDir(), "queue.db"), opts)
}

func mustOpenPath(t testing.TB, path string, opts *Options) *Queue {
	t.Helper()
	q, err := Open(path, opts)
	if err != nil {
		t.Fatalf("Open(%s)=%v", path, err)
	}
	t.Cleanup(func() {
		if err := q.Check(); err != nil && !errors.Is(err, ErrClosed) {
			t.Errorf("Check()=%v", err)
		}
		if err := q.Close(); err != nil {
			t.Errorf("Close()=%v", err)
		}
	})
	return q
}

func mustEnqueue(t testing.TB, q *Queue, recs ...Record) []uint64 {
	t.Helper()
	seqs, err := q.Enqueue(recs...)
	if err != nil {
		t.Fatalf("Enqueue()=%v", err)
	}
	return seqs
}

func mustRead(t testing.TB, q *Queue, after uint64, maxRecords, maxBytes int) []Record {
	t.Helper()
	recs, err := q.Read(after, maxRecords, maxBytes)
	if err != nil {
		t.Fatalf("Read(%d, %d, %d)=%v", after, maxRecords, maxBytes, err)
	}
	return recs
}

func mustStats(t testing.TB, q *Queue) Stats {
	t.Helper()
	s, err := q.Stats()
	if err != nil {
		t.Fatalf("Stats()=%v", err)
	}
	return s
}

func rec(topic, payload string) Record {
	return Record{Topic: topic, Payload: []byte(payload), QoS: 1}
}

func seqsOf(recs []Record) []uint64 {
	out := make([]uint64, len(recs))
	for i, r := range recs {
		out[i] = r.Seq
	}
	return out
}

// fakeClock is a settable clock for Options.Now.
type fakeClock struct{ now time.Time }

func (c *fakeClock) Now() time.Time { return c.now }
