package queue

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// Ensure Compact shrinks a drained file, keeps every record, counter and the window summary,
// and leaves no temporary file behind.
func TestCompact(t *testing.T) {
	path := filepath.Join(t.TempDir(), "q.db")
	q := mustOpenPath(t, path, &Options{MaxRecords: 20_000})
	mustEnqueue(t, q, makeRecords(20_000, 60)...)
	mustEnqueue(t, q, makeRecords(10, 60)...) // drops 10
	if err := q.PutWindowSummary([]byte(`{"ok":true}`)); err != nil {
		t.Fatal(err)
	}
	drainAllBut(t, q, 5)
	before := mustStats(t, q)
	keep := seqsOf(mustRead(t, q, 0, 100, 0))
	if err := q.Compact(); err != nil {
		t.Fatalf("Compact()=%v", err)
	}
	after := mustStats(t, q)
	if after.FileSize >= before.FileSize/4 {
		t.Fatalf("FileSize %d -> %d: compaction did not shrink the file", before.FileSize, after.FileSize)
	}
	before.FileSize, after.FileSize = 0, 0
	if before != after {
		t.Fatalf("Stats changed by Compact:\n%+v\n%+v", before, after)
	}
	if got := seqsOf(mustRead(t, q, 0, 100, 0)); !slices.Equal(got, keep) {
		t.Fatalf("records after Compact=%v, want %v", got, keep)
	}
	if ws, err := q.WindowSummary(); err != nil || string(ws) != `{"ok":true}` {
		t.Fatalf("WindowSummary() after Compact=%q, %v", ws, err)
	}
	entries, err := os.ReadDir(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".compact") || strings.HasSuffix(e.Name(), ".create") {
			t.Fatalf("temporary file %s left behind", e.Name())
		}
	}
}

// Ensure the file stays bounded without compaction: 100 cycles of "enqueue 10,000, drain all"
// keep it under twice its size after the first cycle, because bbolt reuses freed pages.
func TestDiskStaysBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping 1,000,000-record churn in -short mode")
	}
	q := mustOpen(t, nil)
	batch := makeRecords(10_000, 50)
	var first int64
	for cycle := range 100 {
		mustEnqueue(t, q, batch...)
		drainAllBut(t, q, 0)
		size := mustStats(t, q).FileSize
		if cycle == 0 {
			first = size
			continue
		}
		if size >= 2*first {
			t.Fatalf("cycle %d: file is %d bytes, first cycle left %d", cycle, size, first)
		}
	}
	t.Logf("file size after the first cycle %d, after the last %d", first, mustStats(t, q).FileSize)
}

func makeRecords(n, payloadLen int) []Record {
	recs := make([]Record, n)
	for i := range recs {
		recs[i] = Record{Topic: "site/42/reading", Payload: fmt.Appendf(nil, "%0*d", payloadLen, i), QoS: 1}
	}
	return recs
}

// drainAllBut reads and acks in batches of 1,000 until only keep records are left.
func drainAllBut(t testing.TB, q *Queue, keep int64) {
	t.Helper()
	for {
		depth := mustStats(t, q).Depth
		if depth <= keep {
			return
		}
		batch := mustRead(t, q, 0, int(min(1000, depth-keep)), 0)
		if err := q.Ack(seqsOf(batch)); err != nil {
			t.Fatalf("Ack()=%v", err)
		}
	}
}
