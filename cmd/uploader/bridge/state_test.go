package bridge

import (
	"encoding/binary"
	"errors"
	"math"
	"path/filepath"
	"slices"
	"testing"

	bolt "go.etcd.io/bbolt"
)

func TestInsertKeepsSpansSortedAndJoined(t *testing.T) {
	tests := []struct {
		name string
		seqs []uint64
		want []span
	}{
		{"one", []uint64{5}, []span{{5, 5}}},
		{"run", []uint64{1, 2, 3, 4}, []span{{1, 4}}},
		{"run backwards", []uint64{4, 3, 2, 1}, []span{{1, 4}}},
		{"gap", []uint64{1, 2, 4, 5}, []span{{1, 2}, {4, 5}}},
		{"gap filled", []uint64{1, 2, 4, 5, 3}, []span{{1, 5}}},
		{"repeats", []uint64{7, 7, 8, 7}, []span{{7, 8}}},
		{"between", []uint64{10, 1, 5}, []span{{1, 1}, {5, 5}, {10, 10}}},
		{"joins next only", []uint64{10, 9}, []span{{9, 10}}},
		{"zero and max", []uint64{0, ^uint64(0), 1, ^uint64(0) - 1}, []span{{0, 1}, {^uint64(0) - 1, ^uint64(0)}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var sp []span
			for _, q := range tc.seqs {
				sp = insert(sp, q)
			}
			if !slices.Equal(sp, tc.want) {
				t.Fatalf("spans %v, want %v", sp, tc.want)
			}
			for _, q := range tc.seqs {
				if !covered(sp, q) {
					t.Errorf("seq %d not covered by %v", q, sp)
				}
			}
		})
	}
}

func TestStatePersistsAndAnswersSeen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bridge.db")
	st, err := OpenState(path, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Record("site-a", []uint64{1, 2, 3, 7}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Record("site-b", []uint64{2}); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	st, err = OpenState(path, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for _, c := range []struct {
		client string
		seq    uint64
		want   bool
	}{
		{"site-a", 1, true}, {"site-a", 3, true}, {"site-a", 4, false}, {"site-a", 7, true}, {"site-a", 8, false},
		{"site-b", 1, false}, {"site-b", 2, true}, {"site-c", 2, false},
	} {
		got, err := st.Seen(c.client, c.seq)
		if err != nil {
			t.Fatal(err)
		}
		if got != c.want {
			t.Errorf("Seen(%s, %d) = %v after reopening, want %v", c.client, c.seq, got, c.want)
		}
	}
}

func TestStateBoundJoinsTheOldestGap(t *testing.T) {
	st, err := OpenState(filepath.Join(t.TempDir(), "bridge.db"), 3)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	// Spans 1..2, 5, 9 fill the bound; 20 joins the oldest gap (3, 4).
	if f, err := st.Record("s", []uint64{1, 2, 5, 9}); err != nil || f != 0 {
		t.Fatalf("Record = %d, %v; want 0 forgotten", f, err)
	}
	f, err := st.Record("s", []uint64{20})
	if err != nil {
		t.Fatal(err)
	}
	if f != 2 {
		t.Errorf("forgotten %d seqs, want 2 (3 and 4)", f)
	}
	if n, _ := st.Spans("s"); n != 3 {
		t.Errorf("%d spans, want the bound 3", n)
	}
	for _, q := range []uint64{3, 4} {
		if seen, _ := st.Seen("s", q); !seen {
			t.Errorf("seq %d in the joined gap not counted as seen", q)
		}
	}
	for _, q := range []uint64{6, 10, 19} {
		if seen, _ := st.Seen("s", q); seen {
			t.Errorf("seq %d counted as seen", q)
		}
	}
}

func TestStateRefusesOtherVersionsAndBadSpans(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bridge.db")
	st, err := OpenState(path, 0)
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		if err := tx.Bucket(bucketSeen).Put([]byte("odd"), []byte{1, 2, 3}); err != nil {
			return err
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	st, err = OpenState(path, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Seen("odd", 1); err == nil {
		t.Error("spans of 3 bytes read without an error")
	}
	st.Close()

	db, err = bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketMeta).Put(keyVersion, []byte{9}) }); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if _, err := OpenState(path, 0); !errors.Is(err, ErrStateVersion) {
		t.Errorf("OpenState of a version 9 file: %v, want ErrStateVersion", err)
	}
}

// FuzzDecodeSpans: whatever the state file holds for a client, decoding
// never panics, and spans it accepts keep their order through insert.
func FuzzDecodeSpans(f *testing.F) {
	enc := func(sp ...span) []byte {
		var b []byte
		for _, r := range sp {
			b = binary.BigEndian.AppendUint64(b, r.lo)
			b = binary.BigEndian.AppendUint64(b, r.hi)
		}
		return b
	}
	f.Add(enc(span{1, 5}, span{7, 9}), uint64(6))
	f.Add(enc(span{5, 1}), uint64(2))
	f.Add(enc(span{1, 5}, span{6, 9}), uint64(3))
	f.Add([]byte{1, 2, 3}, uint64(0))
	f.Add(enc(span{0, math.MaxUint64}), uint64(7))
	f.Fuzz(func(t *testing.T, v []byte, seq uint64) {
		sp, err := decodeSpans(v)
		if err != nil {
			return
		}
		sp = insert(sp, seq)
		if !covered(sp, seq) {
			t.Fatalf("seq %d not covered after insert: %v", seq, sp)
		}
		if _, err := decodeSpans(enc(sp...)); err != nil {
			t.Fatalf("insert broke the spans' order: %v: %v", sp, err)
		}
	})
}
