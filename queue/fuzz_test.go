package queue

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/fnv"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// FuzzDecodeRecord: hostile stored values never panic, and whatever decodes re-encodes to the
// same bytes (so decoding loses nothing) with a size recordSize agrees on.
func FuzzDecodeRecord(f *testing.F) {
	for _, r := range []Record{
		{Topic: "site/7/temp", Payload: []byte("21.5"), QoS: 1, Retain: true, EnqueuedAt: goldenTime, ExpiresAt: goldenTime.Add(time.Hour)},
		{Topic: "a", EnqueuedAt: goldenTime},
		{Topic: "bin", Payload: []byte{0, 1, 0xff}, QoS: 2, EnqueuedAt: time.Unix(0, -1)},
	} {
		f.Add(appendRecord(nil, &r))
	}
	f.Add([]byte{})
	f.Add([]byte{1, 0x08, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, v []byte) {
		r, err := decodeRecord(7, v)
		size, sizeErr := recordSize(v)
		if err != nil {
			return
		}
		if got := appendRecord(nil, &r); !bytes.Equal(got, v) {
			t.Fatalf("decode then encode changed %x into %x", v, got)
		}
		if sizeErr != nil || size != r.size() {
			t.Fatalf("recordSize()=%d, %v, want %d", size, sizeErr, r.size())
		}
		if at, err := enqueuedAtOf(v); err != nil || !at.Equal(r.EnqueuedAt) {
			t.Fatalf("enqueuedAtOf()=%v, %v, want %v", at, err, r.EnqueuedAt)
		}
		if r.validate() != nil {
			t.Fatalf("decoded an invalid record %+v", r)
		}
	})
}

// FuzzParseBboltMeta: arbitrary first pages never panic the meta pre-check.
func FuzzParseBboltMeta(f *testing.F) {
	f.Add(bytes.Repeat([]byte{0}, 80))
	f.Add(validMetaPage(4096, 3, 2, 4, 1))
	f.Fuzz(func(t *testing.T, page []byte) {
		m, err := parseBboltMeta(page)
		if err == nil && m.pageSize == 0 && m.pgid == 0 && m.txid == 0 && len(page) < 80 {
			t.Fatalf("accepted a short page %x", page)
		}
	})
}

// FuzzHostileMeta writes meta pages with valid checksums but hostile fields over a real queue
// file, then uses the queue: bbolt trusts these fields, so this is where a mapped file can
// fault. Every call must return (an error is fine) and never crash the process.
func FuzzHostileMeta(f *testing.F) {
	f.Add(uint32(4096), uint64(3), uint64(2), uint64(4), uint64(1), uint32(0))
	f.Add(uint32(4096), uint64(0), uint64(1), uint64(4), uint64(9), uint32(0))
	f.Add(uint32(1024), uint64(3), uint64(3), uint64(1<<20), uint64(1), uint32(1))
	f.Add(uint32(65536), uint64(2), uint64(0xffffffffffffffff), uint64(3), uint64(2), uint32(0))
	template := filepath.Join(f.TempDir(), "template.db")
	fillQueue(f, template, 0)
	tmpl, err := os.ReadFile(template)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, pageSize uint32, root, freelist, pgid, txid uint64, which uint32) {
		data := bytes.Clone(tmpl)
		off := 0
		if which%2 == 1 {
			off = os.Getpagesize()
		}
		copy(data[off:], validMetaPage(pageSize, root, freelist, pgid, txid))
		path := filepath.Join(t.TempDir(), "q.db")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		q := handleWithoutOpen(path)
		q.opts.BusyTimeout = time.Second
		for _, err := range []error{
			func() error { _, err := q.Stats(); return err }(),
			func() error { _, err := q.Read(0, 10, 0); return err }(),
			func() error { _, err := q.Enqueue(rec("t", "x")); return err }(),
			func() error { return q.Ack([]uint64{1}) }(),
		} {
			if errors.Is(err, ErrBusy) {
				t.Fatalf("a damaged file left the queue locked: %v", err)
			}
		}
	})
}

// validMetaPage builds a bbolt meta page with a correct checksum.
func validMetaPage(pageSize uint32, root, freelist, pgid, txid uint64) []byte {
	page := make([]byte, bboltPageHeader+bboltMetaLen)
	ne := binary.NativeEndian
	ne.PutUint64(page[0:], txid%2) // page id
	ne.PutUint16(page[8:], 0x04)   // meta page flag
	m := page[bboltPageHeader:]
	ne.PutUint32(m[0:], bboltMagic)
	ne.PutUint32(m[4:], bboltVersion)
	ne.PutUint32(m[8:], pageSize)
	ne.PutUint64(m[16:], root)
	ne.PutUint64(m[32:], freelist)
	ne.PutUint64(m[40:], pgid)
	ne.PutUint64(m[48:], txid)
	h := fnv.New64a()
	_, _ = h.Write(m[:bboltMetaSumLen])
	ne.PutUint64(m[bboltMetaSumLen:], h.Sum64())
	return page
}
