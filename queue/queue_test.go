package queue

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// Ensure records come back in order with every field intact, and that Ack removes exactly them.
func TestEnqueueReadAckRoundTrip(t *testing.T) {
	q := mustOpen(t, nil)
	in := []Record{
		{Topic: "s/1", Payload: []byte("a"), QoS: 0},
		{Topic: "s/2", Payload: []byte{0, 0xff}, QoS: 1, Retain: true, EnqueuedAt: goldenTime},
		{Topic: "s/3", QoS: 2, ExpiresAt: time.Now().Add(time.Hour)},
	}
	seqs := mustEnqueue(t, q, in...)
	if want := []uint64{1, 2, 3}; !slices.Equal(seqs, want) {
		t.Fatalf("Enqueue() seqs=%v, want %v", seqs, want)
	}
	got := mustRead(t, q, 0, 10, 0)
	if len(got) != len(in) {
		t.Fatalf("Read() returned %d records, want %d", len(got), len(in))
	}
	for i := range in {
		want := in[i]
		want.Seq = seqs[i]
		if want.EnqueuedAt.IsZero() {
			want.EnqueuedAt = got[i].EnqueuedAt
			if time.Since(got[i].EnqueuedAt) > time.Minute {
				t.Errorf("record %d EnqueuedAt=%v, want about now", i, got[i].EnqueuedAt)
			}
		}
		if !recordsEqual(got[i], want) {
			t.Errorf("record %d=%+v, want %+v", i, got[i], want)
		}
	}
	if err := q.Ack([]uint64{1, 3, 99}); err != nil {
		t.Fatalf("Ack()=%v", err)
	}
	if got := seqsOf(mustRead(t, q, 0, 10, 0)); !slices.Equal(got, []uint64{2}) {
		t.Fatalf("after Ack, Read() seqs=%v, want [2]", got)
	}
	if s := mustStats(t, q); s.Depth != 1 || s.Bytes != int64(len("s/2")+2) {
		t.Fatalf("Stats() depth=%d bytes=%d, want 1 and 5", s.Depth, s.Bytes)
	}
}

// Ensure Read honours after, the count bound and the byte bound, and always returns one record.
func TestReadBounds(t *testing.T) {
	q := mustOpen(t, nil)
	for i := range 10 {
		mustEnqueue(t, q, rec("t", strings.Repeat("x", 9))) // 10 bytes each
		_ = i
	}
	tests := []struct {
		name                string
		after               uint64
		maxRecords, maxByte int
		want                []uint64
	}{
		{"count", 0, 3, 0, []uint64{1, 2, 3}},
		{"after", 7, 10, 0, []uint64{8, 9, 10}},
		{"bytes", 0, 10, 35, []uint64{1, 2, 3}},
		{"bytes exact", 0, 10, 30, []uint64{1, 2, 3}},
		{"at least one", 0, 10, 1, []uint64{1}},
		{"default count", 0, 0, 0, []uint64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}},
		{"past end", 10, 10, 0, nil},
		{"max after", ^uint64(0), 10, 0, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := seqsOf(mustRead(t, q, tt.after, tt.maxRecords, tt.maxByte))
			if !slices.Equal(got, tt.want) {
				t.Fatalf("Read(%d, %d, %d)=%v, want %v", tt.after, tt.maxRecords, tt.maxByte, got, tt.want)
			}
		})
	}
}

// Ensure sequence numbers keep growing after a drain, a reopen and a compaction.
func TestSeqNeverReused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "q.db")
	q := mustOpenPath(t, path, nil)
	seqs := mustEnqueue(t, q, rec("t", "1"), rec("t", "2"))
	if err := q.Ack(seqs); err != nil {
		t.Fatal(err)
	}
	q2 := mustOpenPath(t, path, nil)
	if got := mustEnqueue(t, q2, rec("t", "3")); got[0] != 3 {
		t.Fatalf("after drain and reopen, seq=%d, want 3", got[0])
	}
	if err := q2.Ack([]uint64{3}); err != nil {
		t.Fatal(err)
	}
	if err := q2.Compact(); err != nil {
		t.Fatalf("Compact()=%v", err)
	}
	if got := mustEnqueue(t, q, rec("t", "4")); got[0] != 4 {
		t.Fatalf("after compaction, seq=%d, want 4", got[0])
	}
	if s := mustStats(t, q); s.LastSeq != 4 {
		t.Fatalf("Stats().LastSeq=%d, want 4", s.LastSeq)
	}
}

// Ensure expired records are never returned, are deleted and are counted.
func TestReadDeletesExpired(t *testing.T) {
	clock := &fakeClock{now: goldenTime}
	q := mustOpen(t, &Options{Now: clock.Now})
	mustEnqueue(t, q,
		Record{Topic: "t", ExpiresAt: goldenTime.Add(time.Minute)},
		Record{Topic: "t"},
		Record{Topic: "t", ExpiresAt: goldenTime.Add(time.Hour)},
		Record{Topic: "t", ExpiresAt: goldenTime.Add(time.Second)},
	)
	if got := seqsOf(mustRead(t, q, 0, 10, 0)); !slices.Equal(got, []uint64{1, 2, 3, 4}) {
		t.Fatalf("before expiry Read()=%v", got)
	}
	clock.now = goldenTime.Add(time.Minute) // expiry is inclusive
	if got := seqsOf(mustRead(t, q, 0, 10, 0)); !slices.Equal(got, []uint64{2, 3}) {
		t.Fatalf("after expiry Read()=%v, want [2 3]", got)
	}
	s := mustStats(t, q)
	if s.Expired != 2 || s.Depth != 2 {
		t.Fatalf("Stats() expired=%d depth=%d, want 2 and 2", s.Expired, s.Depth)
	}
}

// Ensure a run of expired records longer than one read pass is skipped in one Read call.
func TestReadSkipsLongExpiredRun(t *testing.T) {
	clock := &fakeClock{now: goldenTime}
	q := mustOpen(t, &Options{Now: clock.Now})
	batch := make([]Record, maxExpiredPerPass*2+10)
	for i := range batch {
		batch[i] = Record{Topic: "t", ExpiresAt: goldenTime.Add(time.Second)}
	}
	mustEnqueue(t, q, batch...)
	live := mustEnqueue(t, q, rec("t", "live"))
	clock.now = goldenTime.Add(time.Hour)
	if got := seqsOf(mustRead(t, q, 0, 10, 0)); !slices.Equal(got, live) {
		t.Fatalf("Read()=%v, want %v", got, live)
	}
	if s := mustStats(t, q); s.Expired != uint64(len(batch)) || s.Depth != 1 {
		t.Fatalf("Stats() expired=%d depth=%d, want %d and 1", s.Expired, s.Depth, len(batch))
	}
}

func TestLimits(t *testing.T) {
	tests := []struct {
		name         string
		opts         Options
		batches      [][]Record
		wantErr      error // of the last batch
		wantSeqs     []uint64
		wantDropped  uint64
		wantRejected uint64
	}{
		{
			name:        "drop oldest by count",
			opts:        Options{MaxRecords: 3},
			batches:     [][]Record{{rec("t", "1"), rec("t", "2"), rec("t", "3")}, {rec("t", "4"), rec("t", "5")}},
			wantSeqs:    []uint64{3, 4, 5},
			wantDropped: 2,
		},
		{
			name:        "drop oldest by bytes",
			opts:        Options{MaxBytes: 10},
			batches:     [][]Record{{rec("t", "1234"), rec("t", "1234")}, {rec("t", "1234")}},
			wantSeqs:    []uint64{2, 3},
			wantDropped: 1,
		},
		{
			name:        "drop oldest within one batch",
			opts:        Options{MaxRecords: 2},
			batches:     [][]Record{{rec("t", "1"), rec("t", "2"), rec("t", "3")}},
			wantSeqs:    []uint64{2, 3},
			wantDropped: 1,
		},
		{
			name:         "reject new by count",
			opts:         Options{MaxRecords: 2, Policy: RejectNew},
			batches:      [][]Record{{rec("t", "1")}, {rec("t", "2"), rec("t", "3")}},
			wantErr:      ErrFull,
			wantSeqs:     []uint64{1},
			wantRejected: 2,
		},
		{
			name:         "reject new by bytes",
			opts:         Options{MaxBytes: 8, Policy: RejectNew},
			batches:      [][]Record{{rec("t", "123")}, {rec("t", "1234")}},
			wantErr:      ErrFull,
			wantSeqs:     []uint64{1},
			wantRejected: 1,
		},
		{
			name:         "reject new counts every refused call",
			opts:         Options{MaxRecords: 1, Policy: RejectNew},
			batches:      [][]Record{{rec("t", "1")}, {rec("t", "2")}, {rec("t", "3"), rec("t", "4")}, {rec("t", "5")}},
			wantErr:      ErrFull,
			wantSeqs:     []uint64{1},
			wantRejected: 4,
		},
		{
			name:         "record larger than MaxBytes",
			opts:         Options{MaxBytes: 4},
			batches:      [][]Record{{rec("t", "1")}, {rec("t", "12345")}},
			wantErr:      ErrFull,
			wantSeqs:     []uint64{1},
			wantRejected: 1,
		},
		{
			name:         "batch with a record larger than MaxBytes",
			opts:         Options{MaxBytes: 4, Policy: RejectNew},
			batches:      [][]Record{{rec("t", "1"), rec("t", "12345"), rec("t", "2")}},
			wantErr:      ErrFull,
			wantRejected: 3,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := mustOpen(t, &tt.opts)
			var err error
			for _, b := range tt.batches {
				_, err = q.Enqueue(b...)
			}
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("last Enqueue()=%v, want %v", err, tt.wantErr)
			}
			if err != nil && !strings.Contains(err.Error(), q.Path()) {
				t.Errorf("error %q does not name the path", err)
			}
			if got := seqsOf(mustRead(t, q, 0, 100, 0)); !slices.Equal(got, tt.wantSeqs) {
				t.Fatalf("stored seqs=%v, want %v", got, tt.wantSeqs)
			}
			if s := mustStats(t, q); s.Dropped != tt.wantDropped || s.Rejected != tt.wantRejected {
				t.Fatalf("Stats() dropped=%d rejected=%d, want %d and %d", s.Dropped, s.Rejected, tt.wantDropped, tt.wantRejected)
			}
		})
	}
}

func TestEnqueueInvalidRecord(t *testing.T) {
	q := mustOpen(t, nil)
	tests := []struct {
		name string
		rec  Record
	}{
		{"empty topic", Record{Payload: []byte("x")}},
		{"qos 3", Record{Topic: "t", QoS: 3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := q.Enqueue(rec("ok", "1"), tt.rec)
			if !errors.Is(err, ErrInvalidRecord) {
				t.Fatalf("Enqueue()=%v, want ErrInvalidRecord", err)
			}
		})
	}
	if s := mustStats(t, q); s.Depth != 0 {
		t.Fatalf("a rejected batch stored %d records", s.Depth)
	}
}

func TestStats(t *testing.T) {
	clock := &fakeClock{now: goldenTime}
	q := mustOpen(t, &Options{Now: clock.Now})
	if s := mustStats(t, q); s.Depth != 0 || !s.Oldest.IsZero() || !s.Newest.IsZero() || s.FileSize == 0 {
		t.Fatalf("empty Stats()=%+v", s)
	}
	mustEnqueue(t, q, rec("ab", "cde"))
	clock.now = goldenTime.Add(time.Minute)
	mustEnqueue(t, q, rec("ab", "c"))
	s := mustStats(t, q)
	want := Stats{Depth: 2, Bytes: 8, FileSize: s.FileSize, Oldest: goldenTime, Newest: goldenTime.Add(time.Minute), LastSeq: 2}
	if s.Depth != want.Depth || s.Bytes != want.Bytes || !s.Oldest.Equal(want.Oldest) || !s.Newest.Equal(want.Newest) || s.LastSeq != want.LastSeq {
		t.Fatalf("Stats()=%+v, want %+v", s, want)
	}
}

func TestWindowSummary(t *testing.T) {
	q := mustOpen(t, nil)
	if got, err := q.WindowSummary(); got != nil || err != nil {
		t.Fatalf("WindowSummary() on a new queue=%q, %v, want nil, nil", got, err)
	}
	for _, data := range []string{`{"sent":3}`, `{"sent":4,"acked":4}`} {
		if err := q.PutWindowSummary([]byte(data)); err != nil {
			t.Fatalf("PutWindowSummary()=%v", err)
		}
		got, err := q.WindowSummary()
		if err != nil || string(got) != data {
			t.Fatalf("WindowSummary()=%q, %v, want %q", got, err, data)
		}
	}
	if err := q.PutWindowSummary(nil); err != nil {
		t.Fatal(err)
	}
	if got, err := q.WindowSummary(); got != nil || err != nil {
		t.Fatalf("after clearing, WindowSummary()=%q, %v", got, err)
	}
}

// Ensure records handed out by Read do not change when the queue changes afterwards.
func TestReadReturnsCopies(t *testing.T) {
	q := mustOpen(t, nil)
	mustEnqueue(t, q, rec("t/1", "first"), rec("t/2", "second"))
	batch := mustRead(t, q, 0, 10, 0)
	snapshot := fmt.Sprintf("%+v", batch)
	more := make([]Record, 500)
	for i := range more {
		more[i] = rec("t/overwrite", strings.Repeat("z", 100))
	}
	mustEnqueue(t, q, more...)
	if err := q.Ack(seqsOf(batch)); err != nil {
		t.Fatal(err)
	}
	if err := q.Compact(); err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprintf("%+v", batch); got != snapshot {
		t.Fatalf("batch changed after later writes:\n%s\nwant\n%s", got, snapshot)
	}
	if !bytes.Equal(batch[1].Payload, []byte("second")) {
		t.Fatalf("payload=%q", batch[1].Payload)
	}
}

func TestCloseTwice(t *testing.T) {
	q, err := Open(filepath.Join(t.TempDir(), "q.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := q.Close(); err != nil {
		t.Fatalf("first Close()=%v", err)
	}
	if err := q.Close(); err != nil {
		t.Fatalf("second Close()=%v", err)
	}
	if _, err := q.Enqueue(rec("t", "x")); !errors.Is(err, ErrClosed) {
		t.Fatalf("Enqueue after Close=%v, want ErrClosed", err)
	}
}

func TestOpenCreatesParentDirAndRecreatesDeletedFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a", "b", "q.db")
	q := mustOpenPath(t, path, nil)
	mustEnqueue(t, q, rec("t", "x"))
	if q.Path() != path {
		t.Fatalf("Path()=%q, want %q", q.Path(), path)
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if got := mustEnqueue(t, q, rec("t", "y")); got[0] != 1 {
		t.Fatalf("after the file was deleted, Enqueue() seq=%d, want 1 in a new file", got[0])
	}
}

func TestOpenRejectsBadOptions(t *testing.T) {
	dir := t.TempDir()
	for name, opts := range map[string]*Options{
		"policy":   {Policy: Policy(7)},
		"negative": {MaxRecords: -1},
	} {
		if _, err := Open(filepath.Join(dir, name+".db"), opts); err == nil {
			t.Errorf("Open with bad %s: no error", name)
		}
	}
	if _, err := Open("", nil); err == nil {
		t.Error("Open(\"\"): no error")
	}
}
