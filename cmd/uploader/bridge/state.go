package bridge

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
)

// DefaultMaxSpans bounds the de-duplication state of one client id: at
// most this many disjoint runs of seqs, 16 bytes each (16 KiB a site).
// A site's packs carry runs of consecutive seqs, and a window sends its
// oldest readings first, so a site that packs everything needs one span;
// each reading it sends unpacked (retained, or before --pack was turned on)
// splits a run in two.
const DefaultMaxSpans = 1024

// stateVersion is the layout of the state file this package writes.
const stateVersion = 1

var (
	bucketSeen = []byte("seen") // client id -> spans, 16 bytes each (lo, hi)
	bucketMeta = []byte("meta")
	keyVersion = []byte("version")
)

// ErrStateVersion is returned for a state file of another layout.
var ErrStateVersion = errors.New("bridge state file of another version")

// span is a run of seqs lo..hi (inclusive) already republished.
type span struct{ lo, hi uint64 }

// State is the persisted de-duplication state: per client id, the seqs
// already republished, as at most maxSpans disjoint spans. When a new seq
// would make more, the two lowest spans are joined, and the seqs in the gap
// between them count as seen from then on (Record reports how many: a
// reading of such a seq arriving later would be dropped as a duplicate, so
// the bound is the oldest gap a late reading may still fill).
//
// Safe for concurrent use.
type State struct {
	db       *bolt.DB
	maxSpans int

	mu    sync.Mutex
	cache map[string][]span // loaded on first use of a client id
}

// OpenState opens or creates the state file at path. maxSpans 0 means
// DefaultMaxSpans.
func OpenState(path string, maxSpans int) (*State, error) {
	if maxSpans == 0 {
		maxSpans = DefaultMaxSpans
	}
	if maxSpans < 1 {
		return nil, fmt.Errorf("bridge state: max spans %d is below 1", maxSpans)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 2 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("open bridge state %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		if _, err := tx.CreateBucketIfNotExists(bucketSeen); err != nil {
			return err
		}
		meta, err := tx.CreateBucketIfNotExists(bucketMeta)
		if err != nil {
			return err
		}
		v := meta.Get(keyVersion)
		switch {
		case v == nil:
			return meta.Put(keyVersion, []byte{stateVersion})
		case len(v) != 1 || v[0] != stateVersion:
			return fmt.Errorf("%w (%x, this build reads %d)", ErrStateVersion, v, stateVersion)
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open bridge state %s: %w", path, err)
	}
	return &State{db: db, maxSpans: maxSpans, cache: make(map[string][]span)}, nil
}

// Close closes the file.
func (s *State) Close() error { return s.db.Close() }

// spans returns the cached spans of client, loading them on first use.
// Called with s.mu held.
func (s *State) spans(client string) ([]span, error) {
	if sp, ok := s.cache[client]; ok {
		return sp, nil
	}
	var sp []span
	err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		sp, err = decodeSpans(tx.Bucket(bucketSeen).Get([]byte(client)))
		if err != nil {
			return fmt.Errorf("bridge state: client %q: %w", client, err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	s.cache[client] = sp
	return sp, nil
}

// Seen reports whether seq of client was republished already.
func (s *State) Seen(client string, seq uint64) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sp, err := s.spans(client)
	if err != nil {
		return false, err
	}
	return covered(sp, seq), nil
}

// Spans returns how many spans client holds (for tests and logs).
func (s *State) Spans(client string) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sp, err := s.spans(client)
	return len(sp), err
}

// Record marks seqs of client as republished, durably (one transaction,
// synced) before it returns. forgotten is how many never-seen seqs the
// bound made count as seen (0 unless spans had to be joined).
func (s *State) Record(client string, seqs []uint64) (forgotten uint64, err error) {
	if len(seqs) == 0 {
		return 0, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	old, err := s.spans(client)
	if err != nil {
		return 0, err
	}
	sp := slices.Clone(old)
	for _, q := range seqs {
		sp = insert(sp, q)
	}
	for len(sp) > s.maxSpans {
		forgotten += sp[1].lo - sp[0].hi - 1
		sp[1].lo = sp[0].lo
		sp = sp[1:]
	}
	buf := make([]byte, 16*len(sp))
	for i, r := range sp {
		binary.BigEndian.PutUint64(buf[16*i:], r.lo)
		binary.BigEndian.PutUint64(buf[16*i+8:], r.hi)
	}
	err = s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketSeen).Put([]byte(client), buf)
	})
	if err != nil {
		return 0, fmt.Errorf("bridge state: record %d seq(s) of %q: %w", len(seqs), client, err)
	}
	s.cache[client] = slices.Clone(sp)
	return forgotten, nil
}

// covered reports whether seq lies in one of the sorted spans.
func covered(sp []span, seq uint64) bool {
	i, _ := slices.BinarySearchFunc(sp, seq, func(r span, q uint64) int {
		switch {
		case r.hi < q:
			return -1
		case r.lo > q:
			return 1
		}
		return 0
	})
	return i < len(sp) && sp[i].lo <= seq && seq <= sp[i].hi
}

// insert adds seq to the sorted, disjoint, non-adjacent spans.
func insert(sp []span, seq uint64) []span {
	// i: the first span that ends at or after seq.
	i, _ := slices.BinarySearchFunc(sp, seq, func(r span, q uint64) int {
		if r.hi < q {
			return -1
		}
		return 1
	})
	if i < len(sp) && sp[i].lo <= seq {
		return sp // already in
	}
	joinsPrev := i > 0 && sp[i-1].hi+1 == seq
	joinsNext := i < len(sp) && seq+1 == sp[i].lo
	switch {
	case joinsPrev && joinsNext:
		sp[i-1].hi = sp[i].hi
		return slices.Delete(sp, i, i+1)
	case joinsPrev:
		sp[i-1].hi = seq
		return sp
	case joinsNext:
		sp[i].lo = seq
		return sp
	}
	return slices.Insert(sp, i, span{seq, seq})
}

// decodeSpans reads a client's stored spans: 16 bytes each (lo, hi,
// big-endian), sorted, disjoint and not adjacent, as Record writes them.
// Anything else is refused whole: a damaged state must not make the
// bridge skip readings it never republished.
func decodeSpans(v []byte) ([]span, error) {
	if len(v)%16 != 0 {
		return nil, fmt.Errorf("%d bytes of spans, not a multiple of 16", len(v))
	}
	sp := make([]span, 0, len(v)/16)
	for i := 0; i < len(v); i += 16 {
		r := span{binary.BigEndian.Uint64(v[i:]), binary.BigEndian.Uint64(v[i+8:])}
		if r.lo > r.hi {
			return nil, fmt.Errorf("span %d runs backwards (%d..%d)", i/16, r.lo, r.hi)
		}
		if n := len(sp); n > 0 && (sp[n-1].hi == math.MaxUint64 || r.lo <= sp[n-1].hi+1) {
			return nil, fmt.Errorf("span %d (%d..%d) is not after span %d (%d..%d)", i/16, r.lo, r.hi, n-1, sp[n-1].lo, sp[n-1].hi)
		}
		sp = append(sp, r)
	}
	return sp, nil
}
