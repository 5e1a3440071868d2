package queue

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"go.etcd.io/bbolt"
)

// compactTxMaxSize bounds one transaction of the copy, so compaction memory stays bounded.
const compactTxMaxSize = 4 << 20

// Compact rewrites the queue into a new file and renames it over the old one, giving freed
// pages back to the file system. The sequence counter, counters and window summary are copied,
// so sequence numbers keep growing. It holds the queue lock for the whole copy, which takes time
// proportional to the depth: run it when the queue is small (for example right after a window
// drained it). A power cut during Compact leaves the old file in place.
func (q *Queue) Compact() error {
	if err := q.checkOpen(); err != nil {
		return err
	}
	tmp := q.path + ".compact"
	var before, after int64
	err := q.withLock(func() error {
		if err := q.ensureFile(); err != nil {
			return err
		}
		if err := os.Remove(tmp); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("remove stale %s: %w", tmp, err)
		}
		err := q.withDB(q.path, true, func(src *bbolt.DB) error {
			if err := src.View(func(tx *bbolt.Tx) error { _, err := beginTxn(tx, q.path); return err }); err != nil {
				return err
			}
			return q.createDB(tmp, func(dst *bbolt.DB) error {
				if err := bbolt.Compact(dst, src, compactTxMaxSize); err != nil {
					return fmt.Errorf("copy into %s: %w", tmp, err)
				}
				return dst.View(func(tx *bbolt.Tx) error { _, err := beginTxn(tx, tmp); return err })
			})
		})
		if err != nil {
			_ = os.Remove(tmp)
			return err
		}
		if info, err := os.Stat(q.path); err == nil {
			before = info.Size()
		}
		if info, err := os.Stat(tmp); err == nil {
			after = info.Size()
		}
		if err := os.Rename(tmp, q.path); err != nil {
			_ = os.Remove(tmp)
			return err
		}
		return syncDir(filepath.Dir(q.path))
	})
	if err != nil {
		return fmt.Errorf("compact %s: %w", q.path, err)
	}
	q.log.Info("compacted queue file", slog.Int64("size_before", before), slog.Int64("size_after", after))
	return nil
}

// createDB creates a fresh bbolt file at path for the compaction copy.
func (q *Queue) createDB(path string, fn func(*bbolt.DB) error) error {
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: q.opts.LockTimeout})
	if err != nil {
		return fmt.Errorf("create %s: %w", path, err)
	}
	err = fn(db)
	if cerr := db.Close(); cerr != nil {
		err = errors.Join(err, fmt.Errorf("close %s: %w", path, cerr))
	}
	return err
}
