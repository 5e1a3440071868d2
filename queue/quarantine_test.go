package queue

import (
	"bytes"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func mustQuarantined(t testing.TB, q *Queue) []QuarantinedRecord {
	t.Helper()
	qs, err := q.Quarantined(0, 0)
	if err != nil {
		t.Fatalf("Quarantined()=%v", err)
	}
	return qs
}

func quarantinedSeqsOf(qs []QuarantinedRecord) []uint64 {
	out := make([]uint64, len(qs))
	for i, r := range qs {
		out[i] = r.Seq
	}
	return out
}

// Ensure Quarantine moves exactly one record out of the queue, keeping every field, and stores
// the reason and the time; the queue's counters follow.
func TestQuarantineMovesRecordKeepingEverything(t *testing.T) {
	clock := &fakeClock{now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	q := mustOpen(t, &Options{Now: clock.Now})
	poison := Record{Topic: "site/7/denied", Payload: []byte{0, 1, 2}, QoS: 2, Retain: true,
		ExpiresAt: clock.now.Add(48 * time.Hour)}
	mustEnqueue(t, q, rec("site/7/a", "one"), poison, rec("site/7/b", "three"))
	before := mustStats(t, q)
	clock.now = clock.now.Add(time.Hour)

	if err := q.Quarantine(2, "broker refused: PUBACK reason 0x87 (not authorized)"); err != nil {
		t.Fatalf("Quarantine()=%v", err)
	}
	if got := seqsOf(mustRead(t, q, 0, 10, 0)); !slices.Equal(got, []uint64{1, 3}) {
		t.Errorf("queued after Quarantine = %v, want [1 3]", got)
	}
	st := mustStats(t, q)
	if st.Depth != 2 || st.Bytes != before.Bytes-poison.size() || st.Quarantined != 1 || st.LastSeq != 3 {
		t.Errorf("Stats after Quarantine = %+v (before %+v)", st, before)
	}
	qs := mustQuarantined(t, q)
	if len(qs) != 1 {
		t.Fatalf("Quarantined() = %d records, want 1", len(qs))
	}
	got := qs[0]
	if got.Seq != 2 || got.Topic != poison.Topic || !bytes.Equal(got.Payload, poison.Payload) || got.QoS != 2 || !got.Retain ||
		!got.EnqueuedAt.Equal(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)) || !got.ExpiresAt.Equal(poison.ExpiresAt) {
		t.Errorf("quarantined record = %+v, want the fields of %+v with seq 2", got.Record, poison)
	}
	if got.Reason != "broker refused: PUBACK reason 0x87 (not authorized)" || !got.QuarantinedAt.Equal(clock.now) {
		t.Errorf("reason %q at %v, want the given reason at %v", got.Reason, got.QuarantinedAt, clock.now)
	}
	// A quarantined record is no longer queued: quarantining it again finds nothing.
	if err := q.Quarantine(2, "again"); !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "seq 2") {
		t.Errorf("second Quarantine(2)=%v, want ErrNotFound naming seq 2", err)
	}
}

// Ensure a record that is not queued cannot be quarantined and nothing changes.
func TestQuarantineUnknownSeq(t *testing.T) {
	q := mustOpen(t, nil)
	mustEnqueue(t, q, rec("a", "1"))
	mustAck(t, q, 1)
	mustEnqueue(t, q, rec("a", "2"))
	for _, seq := range []uint64{1, 7} {
		if err := q.Quarantine(seq, "x"); !errors.Is(err, ErrNotFound) {
			t.Errorf("Quarantine(%d)=%v, want ErrNotFound", seq, err)
		}
	}
	if st := mustStats(t, q); st.Depth != 1 || st.Quarantined != 0 {
		t.Errorf("Stats = %+v after failed quarantines", st)
	}
}

func mustAck(t testing.TB, q *Queue, seqs ...uint64) {
	t.Helper()
	if err := q.Ack(seqs); err != nil {
		t.Fatalf("Ack(%v)=%v", seqs, err)
	}
}

// Ensure a retried record goes back under its own sequence number and is read in order again,
// while new records keep getting fresh sequence numbers.
func TestRetryQuarantinedRestoresSameSeq(t *testing.T) {
	q := mustOpen(t, nil)
	mustEnqueue(t, q, rec("a", "1"), rec("b", "2"), rec("c", "3"))
	before := mustStats(t, q)
	for _, seq := range []uint64{1, 3} {
		if err := q.Quarantine(seq, "refused"); err != nil {
			t.Fatal(err)
		}
	}
	n, err := q.RetryQuarantined(3)
	if err != nil || n != 1 {
		t.Fatalf("RetryQuarantined(3)=%d, %v", n, err)
	}
	recs := mustRead(t, q, 0, 10, 0)
	if got := seqsOf(recs); !slices.Equal(got, []uint64{2, 3}) || recs[1].Topic != "c" || string(recs[1].Payload) != "3" {
		t.Errorf("queued after retry = %v %+v, want [2 3] with seq 3 intact", got, recs)
	}
	if got := quarantinedSeqsOf(mustQuarantined(t, q)); !slices.Equal(got, []uint64{1}) {
		t.Errorf("still quarantined %v, want [1]", got)
	}
	n, err = q.RetryAllQuarantined()
	if err != nil || n != 1 {
		t.Fatalf("RetryAllQuarantined()=%d, %v", n, err)
	}
	after := mustStats(t, q)
	before.FileSize, after.FileSize = 0, 0
	if after != before {
		t.Errorf("Stats after quarantine and retry of everything = %+v, want %+v", after, before)
	}
	if seqs := mustEnqueue(t, q, rec("d", "4")); seqs[0] != 4 {
		t.Errorf("next seq after retry = %d, want 4", seqs[0])
	}
	if n, err := q.RetryAllQuarantined(); err != nil || n != 0 {
		t.Errorf("RetryAllQuarantined() of an empty quarantine = %d, %v", n, err)
	}
}

// Ensure retry and drop are all or nothing and name an unknown sequence number.
func TestRetryAndDropUnknownSeqChangeNothing(t *testing.T) {
	q := mustOpen(t, nil)
	mustEnqueue(t, q, rec("a", "1"), rec("b", "2"))
	if err := q.Quarantine(1, "refused"); err != nil {
		t.Fatal(err)
	}
	for name, call := range map[string]func() (int, error){
		"retry": func() (int, error) { return q.RetryQuarantined(1, 2) },
		"drop":  func() (int, error) { return q.DropQuarantined(1, 2) },
	} {
		n, err := call()
		if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "seq 2 is not quarantined") || n != 0 {
			t.Errorf("%s of [1 2] = %d, %v; want ErrNotFound naming seq 2", name, n, err)
		}
		if got := quarantinedSeqsOf(mustQuarantined(t, q)); !slices.Equal(got, []uint64{1}) {
			t.Errorf("after the failed %s the quarantine holds %v, want [1]", name, got)
		}
		if st := mustStats(t, q); st.Depth != 1 || st.Quarantined != 1 {
			t.Errorf("after the failed %s: %+v", name, st)
		}
	}
}

// Ensure a retry never makes the queue drop or refuse a record: past a limit it fails with
// ErrFull under either policy and leaves everything where it was.
func TestRetryQuarantinedRespectsLimits(t *testing.T) {
	tests := []struct {
		name string
		opts Options
	}{
		{"records drop-oldest", Options{MaxRecords: 2, Policy: DropOldest}},
		{"records reject-new", Options{MaxRecords: 2, Policy: RejectNew}},
		{"bytes drop-oldest", Options{MaxBytes: 4, Policy: DropOldest}},
		{"bytes reject-new", Options{MaxBytes: 4, Policy: RejectNew}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := mustOpen(t, &tt.opts)
			mustEnqueue(t, q, rec("a", "1"), rec("b", "2"))
			if err := q.Quarantine(1, "refused"); err != nil {
				t.Fatal(err)
			}
			mustEnqueue(t, q, rec("c", "3")) // the queue is at its limit again
			n, err := q.RetryQuarantined(1)
			if !errors.Is(err, ErrFull) || n != 0 {
				t.Fatalf("RetryQuarantined(1) at the limit = %d, %v; want ErrFull", n, err)
			}
			if got := seqsOf(mustRead(t, q, 0, 10, 0)); !slices.Equal(got, []uint64{2, 3}) {
				t.Errorf("queued %v, want [2 3] untouched", got)
			}
			if st := mustStats(t, q); st.Quarantined != 1 || st.Dropped != 0 {
				t.Errorf("Stats %+v, want 1 quarantined, nothing dropped", st)
			}
			mustAck(t, q, 2)
			if n, err := q.RetryQuarantined(1); err != nil || n != 1 {
				t.Errorf("RetryQuarantined(1) with room = %d, %v", n, err)
			}
		})
	}
}

// Ensure quarantined records stay out of the limits: the DropOldest policy never drops them.
func TestQuarantineOutsideLimits(t *testing.T) {
	q := mustOpen(t, &Options{MaxRecords: 2})
	mustEnqueue(t, q, rec("a", "1"), rec("b", "2"))
	if err := q.Quarantine(1, "refused"); err != nil {
		t.Fatal(err)
	}
	mustEnqueue(t, q, rec("c", "3"), rec("d", "4"))
	st := mustStats(t, q)
	if st.Depth != 2 || st.Dropped != 1 || st.Quarantined != 1 {
		t.Errorf("Stats %+v, want depth 2, 1 dropped (seq 2), 1 quarantined", st)
	}
	if got := quarantinedSeqsOf(mustQuarantined(t, q)); !slices.Equal(got, []uint64{1}) {
		t.Errorf("quarantine %v, want [1]", got)
	}
}

func TestDropQuarantined(t *testing.T) {
	q := mustOpen(t, nil)
	mustEnqueue(t, q, rec("a", "1"), rec("b", "2"), rec("c", "3"), rec("d", "4"))
	for _, seq := range []uint64{1, 2, 4} {
		if err := q.Quarantine(seq, "refused"); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := q.DropQuarantined(2, 2); err != nil || n != 1 {
		t.Fatalf("DropQuarantined(2, 2)=%d, %v", n, err)
	}
	if got := quarantinedSeqsOf(mustQuarantined(t, q)); !slices.Equal(got, []uint64{1, 4}) {
		t.Errorf("quarantine after dropping 2: %v", got)
	}
	if n, err := q.DropAllQuarantined(); err != nil || n != 2 {
		t.Fatalf("DropAllQuarantined()=%d, %v", n, err)
	}
	st := mustStats(t, q)
	if st.Quarantined != 0 || st.Depth != 1 || len(mustQuarantined(t, q)) != 0 {
		t.Errorf("after dropping everything: %+v", st)
	}
}

// Ensure Quarantined pages by sequence number.
func TestQuarantinedPages(t *testing.T) {
	q := mustOpen(t, nil)
	mustEnqueue(t, q, makeRecords(10, 4)...)
	for seq := uint64(1); seq <= 10; seq += 2 {
		if err := q.Quarantine(seq, "refused"); err != nil {
			t.Fatal(err)
		}
	}
	page, err := q.Quarantined(3, 2)
	if err != nil {
		t.Fatal(err)
	}
	if got := quarantinedSeqsOf(page); !slices.Equal(got, []uint64{5, 7}) {
		t.Errorf("Quarantined(3, 2) = %v, want [5 7]", got)
	}
}

// Ensure Compact copies the quarantine, its counter and the strikes.
func TestCompactKeepsQuarantine(t *testing.T) {
	q := mustOpenPath(t, filepath.Join(t.TempDir(), "q.db"), nil)
	mustEnqueue(t, q, makeRecords(200, 100)...)
	if err := q.Quarantine(5, "refused"); err != nil {
		t.Fatal(err)
	}
	if _, err := q.Strike(7); err != nil {
		t.Fatal(err)
	}
	before := mustQuarantined(t, q)
	if err := q.Compact(); err != nil {
		t.Fatalf("Compact()=%v", err)
	}
	after := mustQuarantined(t, q)
	if len(after) != 1 || after[0].Seq != 5 || after[0].Reason != before[0].Reason || !bytes.Equal(after[0].Payload, before[0].Payload) {
		t.Errorf("quarantine after Compact = %+v, want %+v", after, before)
	}
	if st := mustStats(t, q); st.Quarantined != 1 {
		t.Errorf("Stats.Quarantined after Compact = %d", st.Quarantined)
	}
	if r := mustRead(t, q, 6, 1, 0); len(r) != 1 || r[0].Strikes != 1 {
		t.Errorf("strikes of seq 7 after Compact: %+v", r)
	}
}

// Ensure strikes are counted, reported by Read, and leave with their record however it goes
// (the cleanup's Check fails on a strike without a record).
func TestStrikesLeaveWithTheirRecord(t *testing.T) {
	clock := &fakeClock{now: time.Now()}
	q := mustOpen(t, &Options{MaxRecords: 6, Now: clock.Now})
	recs := makeRecords(6, 4)
	recs[3].ExpiresAt = clock.now.Add(time.Minute)
	mustEnqueue(t, q, recs...)
	for _, seq := range []uint64{1, 2, 3, 4, 5, 5} {
		if _, err := q.Strike(seq); err != nil {
			t.Fatalf("Strike(%d)=%v", seq, err)
		}
	}
	got := mustRead(t, q, 0, 10, 0)
	strikes := make([]int, len(got))
	for i, r := range got {
		strikes[i] = r.Strikes
	}
	if !slices.Equal(strikes, []int{1, 1, 1, 1, 2, 0}) {
		t.Errorf("strikes read = %v, want [1 1 1 1 2 0]", strikes)
	}
	mustAck(t, q, 2)                             // acknowledged
	if err := q.Quarantine(3, "x"); err != nil { // quarantined
		t.Fatal(err)
	}
	clock.now = clock.now.Add(time.Hour)
	if got := seqsOf(mustRead(t, q, 0, 10, 0)); !slices.Equal(got, []uint64{1, 5, 6}) { // seq 4 expired
		t.Errorf("queued %v, want [1 5 6]", got)
	}
	mustEnqueue(t, q, makeRecords(4, 4)...) // the limit drops seq 1
	// A retried record comes back without the strike it had.
	mustAck(t, q, 7)
	if _, err := q.RetryQuarantined(3); err != nil {
		t.Fatal(err)
	}
	for _, r := range mustRead(t, q, 0, 10, 0) {
		if want := map[bool]int{true: 2}[r.Seq == 5]; r.Strikes != want {
			t.Errorf("seq %d has %d strikes", r.Seq, r.Strikes)
		}
	}
	if err := q.Check(); err != nil {
		t.Errorf("Check()=%v", err)
	}
	if _, err := q.Strike(2); !errors.Is(err, ErrNotFound) {
		t.Errorf("Strike of an acknowledged record = %v, want ErrNotFound", err)
	}
}

// Ensure a long reason is cut to MaxReasonLen on a rune boundary.
func TestQuarantineReasonIsBounded(t *testing.T) {
	q := mustOpen(t, nil)
	mustEnqueue(t, q, rec("a", "1"))
	long := strings.Repeat("é", MaxReasonLen) // 2 bytes each
	if err := q.Quarantine(1, "x"+long); err != nil {
		t.Fatal(err)
	}
	got := mustQuarantined(t, q)[0].Reason
	if len(got) > MaxReasonLen || len(got) < MaxReasonLen-1 || !utf8.ValidString(got) {
		t.Errorf("stored reason of %d bytes (valid UTF-8: %v), want at most %d", len(got), utf8.ValidString(got), MaxReasonLen)
	}
}

// FuzzDecodeQuarantined: hostile quarantine values never panic, and whatever decodes
// re-encodes to the same bytes.
func FuzzDecodeQuarantined(f *testing.F) {
	r := Record{Topic: "site/7/temp", Payload: []byte("21.5"), QoS: 1, EnqueuedAt: goldenTime}
	f.Add(appendQuarantined(nil, goldenTime, "broker refused: 0x87", appendRecord(nil, &r)))
	f.Add(appendQuarantined(nil, time.Unix(0, -1), "", appendRecord(nil, &r)))
	f.Add([]byte{1, 0, 0, 0, 0, 0, 0, 0, 0, 0x80, 0})
	f.Fuzz(func(t *testing.T, v []byte) {
		qr, err := decodeQuarantined(3, v)
		if err != nil {
			return
		}
		if got := appendQuarantined(nil, qr.QuarantinedAt, qr.Reason, appendRecord(nil, &qr.Record)); !bytes.Equal(got, v) {
			t.Fatalf("decode then encode changed %x into %x", v, got)
		}
	})
}
