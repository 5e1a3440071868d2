package queue

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"os"
)

// bbolt maps its whole file and trusts the sizes in its meta pages: opening a truncated file
// faults on the first access past the end (SIGBUS) instead of returning an error. So before
// handing a file to bbolt we read its two meta pages ourselves and check that the file is at
// least as long as the meta page bbolt will pick says it is.
//
// Layout (bbolt v1.4, internal/common/meta.go and page.go), native byte order:
//
//	page header: id u64, flags u16, count u16, overflow u32   (16 bytes)
//	meta:        magic u32, version u32, pageSize u32, flags u32,
//	             root pgid u64, root sequence u64, freelist pgid u64,
//	             high-water pgid u64, txid u64, checksum u64 (FNV-64a of the 56 bytes before it)
const (
	bboltMagic       = 0xED0CDAED
	bboltVersion     = 2
	bboltPageHeader  = 16
	bboltMetaSumLen  = 56
	bboltMetaLen     = bboltMetaSumLen + 8
	bboltMinPageSize = 1024
	bboltMaxPageSize = 64 * 1024
)

type bboltMeta struct {
	pageSize uint32
	root     uint64
	freelist uint64
	pgid     uint64 // high-water mark: the file holds at least pgid pages
	txid     uint64
}

// parseBboltMeta decodes the meta page that starts at page[0].
func parseBboltMeta(page []byte) (bboltMeta, error) {
	if len(page) < bboltPageHeader+bboltMetaLen {
		return bboltMeta{}, errMetaMagic
	}
	m := page[bboltPageHeader : bboltPageHeader+bboltMetaLen]
	ne := binary.NativeEndian
	if ne.Uint32(m[0:4]) != bboltMagic {
		return bboltMeta{}, errMetaMagic
	}
	if ne.Uint32(m[4:8]) != bboltVersion {
		return bboltMeta{}, errMetaVersion
	}
	h := fnv.New64a()
	_, _ = h.Write(m[:bboltMetaSumLen])
	if h.Sum64() != ne.Uint64(m[bboltMetaSumLen:]) {
		return bboltMeta{}, errMetaChecksum
	}
	meta := bboltMeta{
		pageSize: ne.Uint32(m[8:12]),
		root:     ne.Uint64(m[16:24]),
		freelist: ne.Uint64(m[32:40]),
		pgid:     ne.Uint64(m[40:48]),
		txid:     ne.Uint64(m[48:56]),
	}
	return meta, nil
}

// sane checks what bbolt asserts when it writes a meta page but trusts when it reads one. A
// missing freelist (all ones) is valid for bbolt yet never written by this package: it makes
// bbolt rebuild the freelist in a goroutine of its own, where a damaged page panics beyond
// anyone's recover.
func (m bboltMeta) sane() error {
	if m.pageSize < bboltMinPageSize || m.pageSize > bboltMaxPageSize || m.pageSize&(m.pageSize-1) != 0 {
		return fmt.Errorf("%w: page size %d", errMetaFields, m.pageSize)
	}
	if m.root < 2 || m.root >= m.pgid || m.freelist < 2 || m.freelist >= m.pgid || m.root == m.freelist {
		return fmt.Errorf("%w: root page %d, freelist page %d, high-water mark %d",
			errMetaFields, m.root, m.freelist, m.pgid)
	}
	return nil
}

// checkBboltFile returns nil when bbolt can safely open the file at path, ErrNotQueue when it is
// not a bbolt file at all, and ErrCorrupt when it is one that is damaged or truncated.
func checkBboltFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("open queue %s: %w", path, err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return fmt.Errorf("stat queue %s: %w", path, err)
	}
	if info.Size() == 0 {
		return fmt.Errorf("%w: %s is empty", ErrNotQueue, path)
	}
	buf := make([]byte, bboltPageHeader+bboltMetaLen)
	readAt := func(off int64) ([]byte, error) {
		n, err := f.ReadAt(buf, off)
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("read queue %s: %w", path, err)
		}
		return buf[:n], nil
	}

	var metas []bboltMeta
	page, err := readAt(0)
	if err != nil {
		return err
	}
	m0, firstErr := parseBboltMeta(page)
	var offsets []int64
	if firstErr == nil {
		metas = append(metas, m0)
		offsets = append(offsets, int64(m0.pageSize))
	} else {
		// Like bbolt, look for the second meta page at every plausible page size.
		for ps := int64(bboltMinPageSize); ps <= bboltMaxPageSize; ps *= 2 {
			offsets = append(offsets, ps)
		}
	}
	for _, off := range offsets {
		page, err := readAt(off)
		if err != nil {
			return err
		}
		m1, err1 := parseBboltMeta(page)
		if err1 == nil {
			metas = append(metas, m1)
			break
		}
		if firstErr == nil || errors.Is(firstErr, errMetaMagic) {
			firstErr = err1
		}
	}
	if len(metas) == 0 {
		if errors.Is(firstErr, errMetaMagic) {
			return fmt.Errorf("%w: %s is not a bbolt database", ErrNotQueue, path)
		}
		return fmt.Errorf("%w: %s: %w", ErrCorrupt, path, firstErr)
	}
	// Mirror bbolt: it uses the valid meta page with the highest transaction id.
	use := metas[0]
	for _, m := range metas[1:] {
		if m.txid > use.txid {
			use = m
		}
	}
	if err := use.sane(); err != nil {
		return fmt.Errorf("%w: %s: %w", ErrCorrupt, path, err)
	}
	need := int64(use.pgid) * int64(use.pageSize)
	if use.pgid > 1<<40 || info.Size() < need {
		return fmt.Errorf("%w: %s is truncated: %d bytes, meta page says at least %d", ErrCorrupt, path, info.Size(), need)
	}
	return nil
}
