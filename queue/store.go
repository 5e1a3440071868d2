package queue

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/debug"
	"time"

	"go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
	"golang.org/x/sys/unix"
)

// File layout: bucket "meta" holds the identity, the format version, the sequence counter, the
// counters behind Stats and the window summary; bucket "records" maps 8-byte big-endian
// sequence numbers to encoded records (record.go). The sequence counter lives in "meta" and is
// copied by Compact, so it never goes backwards.
const (
	formatVersion = 1
	queueMagic    = "nbiot-uploader-queue"
)

var (
	bucketMeta    = []byte("meta")
	bucketRecords = []byte("records")

	keyMagic    = []byte("magic")
	keyFormat   = []byte("format")
	keyLastSeq  = []byte("last_seq")
	keyDepth    = []byte("depth")
	keyBytes    = []byte("bytes")
	keyDropped  = []byte("dropped")
	keyExpired  = []byte("expired")
	keyRejected = []byte("rejected")
	keyWindow   = []byte("window")
)

// txn is a bbolt transaction whose format has been checked, with the two buckets at hand.
type txn struct {
	tx      *bbolt.Tx
	meta    *bbolt.Bucket
	records *bbolt.Bucket
}

func (t *txn) u64(key []byte) uint64 {
	v := t.meta.Get(key)
	if len(v) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(v)
}

func (t *txn) putU64(key []byte, n uint64) error {
	return t.meta.Put(key, binary.BigEndian.AppendUint64(make([]byte, 0, 8), n))
}

// beginTxn checks that tx belongs to a queue file this program understands.
func beginTxn(tx *bbolt.Tx, path string) (*txn, error) {
	meta := tx.Bucket(bucketMeta)
	if meta == nil || string(meta.Get(keyMagic)) != queueMagic {
		return nil, fmt.Errorf("%w: %s is a bbolt database without queue metadata", ErrNotQueue, path)
	}
	v := meta.Get(keyFormat)
	if len(v) != 4 {
		return nil, fmt.Errorf("%w: %s: bad format version field", ErrCorrupt, path)
	}
	if f := binary.BigEndian.Uint32(v); f > formatVersion {
		return nil, fmt.Errorf("%w: %s has format %d, this program understands up to %d", ErrNewerFormat, path, f, formatVersion)
	}
	records := tx.Bucket(bucketRecords)
	if records == nil {
		return nil, fmt.Errorf("%w: %s: records bucket missing", ErrCorrupt, path)
	}
	return &txn{tx: tx, meta: meta, records: records}, nil
}

func (q *Queue) view(fn func(*txn) error) error {
	return q.run(true, func(db *bbolt.DB) error {
		return db.View(func(tx *bbolt.Tx) error {
			t, err := beginTxn(tx, q.path)
			if err != nil {
				return err
			}
			return fn(t)
		})
	})
}

func (q *Queue) update(fn func(*txn) error) error {
	return q.run(false, func(db *bbolt.DB) error { return q.updateDB(db, fn) })
}

func (q *Queue) updateDB(db *bbolt.DB, fn func(*txn) error) error {
	return db.Update(func(tx *bbolt.Tx) error {
		t, err := beginTxn(tx, q.path)
		if err != nil {
			return err
		}
		return fn(t)
	})
}

// run takes the queue's locks, makes sure the file exists, opens it, calls fn, and closes it.
func (q *Queue) run(readOnly bool, fn func(*bbolt.DB) error) error {
	if err := q.checkOpen(); err != nil {
		return err
	}
	if q.opts.NoCreate {
		if err := q.checkExists(); err != nil {
			return err
		}
	}
	return q.withLock(func() error {
		if err := q.ensureFile(); err != nil {
			return err
		}
		return q.withDB(q.path, readOnly, fn)
	})
}

// withLock calls fn while holding the queue's lock, retrying while the lock (ours, or bbolt's
// held by a foreign program) is busy, up to BusyTimeout.
func (q *Queue) withLock(fn func() error) error {
	start := time.Now()
	deadline := start.Add(q.opts.BusyTimeout)
	for {
		lock, err := acquireLock(q.path, deadline)
		if errors.Is(err, errLockDeadline) {
			return &BusyError{Path: q.path, Waited: time.Since(start)}
		}
		if err != nil {
			return err
		}
		waited := time.Since(start)
		if q.onLockWait != nil {
			q.onLockWait(waited)
		}
		if waited > 100*time.Millisecond {
			q.log.LogAttrs(context.Background(), slog.LevelDebug, "waited for queue lock", slog.Duration("waited", waited))
		}
		err = fn()
		if relErr := lock.release(); relErr != nil {
			err = errors.Join(err, fmt.Errorf("release queue lock %s: %w", q.path, relErr))
		}
		if errors.Is(err, errDBLockTimeout) {
			if time.Now().Before(deadline) {
				continue
			}
			return &BusyError{Path: q.path, Waited: time.Since(start)}
		}
		return err
	}
}

// withDB opens the bbolt file at path and calls fn. A fault or panic inside bbolt (which
// trusts the bytes it maps) is turned into ErrCorrupt instead of crashing the process.
func (q *Queue) withDB(path string, readOnly bool, fn func(*bbolt.DB) error) error {
	var (
		db       *bbolt.DB
		file     *os.File
		panicked bool
	)
	err := func() (err error) {
		defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
		defer func() {
			if r := recover(); r != nil {
				panicked = true
				err = fmt.Errorf("%w: %s: %v", ErrCorrupt, path, r)
			}
		}()
		db, err = q.openDB(path, readOnly, &file)
		if err != nil {
			return err
		}
		return fn(db)
	}()
	if panicked {
		q.abandonDB(db, file)
		return err
	}
	if db != nil {
		if cerr := db.Close(); cerr != nil {
			err = errors.Join(err, fmt.Errorf("close queue %s: %w", path, cerr))
		}
	}
	return err
}

// abandonDB releases what it can of a database whose use panicked. bbolt's state is unknown, so
// the flock is dropped explicitly first (the mapping keeps the file description, and with it
// the lock, alive even after the descriptor is closed); then Close gets a bounded chance, because
// it may block on a lock the panic left held.
func (q *Queue) abandonDB(db *bbolt.DB, file *os.File) {
	if file == nil {
		return
	}
	_ = unix.Flock(int(file.Fd()), unix.LOCK_UN)
	if db == nil {
		_ = file.Close()
		return
	}
	closed := make(chan struct{})
	go func() {
		defer close(closed)
		defer func() { _ = recover() }()
		_ = db.Close()
	}()
	select {
	case <-closed:
	case <-time.After(time.Second):
		q.log.Error("could not close a damaged queue database; leaking its mapping")
		_ = file.Close()
	}
}

func (q *Queue) openDB(path string, readOnly bool, file **os.File) (*bbolt.DB, error) {
	if err := checkBboltFile(path); err != nil {
		return nil, err
	}
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{
		Timeout:  q.opts.LockTimeout,
		ReadOnly: readOnly,
		OpenFile: func(name string, flag int, perm os.FileMode) (*os.File, error) {
			f, err := os.OpenFile(name, flag, perm)
			*file = f
			return f, err
		},
	})
	switch {
	case err == nil:
		return db, nil
	case errors.Is(err, berrors.ErrTimeout):
		return nil, errDBLockTimeout
	case errors.Is(err, berrors.ErrInvalid), errors.Is(err, berrors.ErrVersionMismatch):
		return nil, fmt.Errorf("%w: %s: %w", ErrNotQueue, path, err)
	case errors.Is(err, berrors.ErrChecksum):
		return nil, fmt.Errorf("%w: %s: %w", ErrCorrupt, path, err)
	default:
		return nil, fmt.Errorf("open queue %s: %w", path, err)
	}
}

// ensureFile creates the queue file when it does not exist. It builds the file under a
// temporary name and renames it into place, so a power cut mid-way never leaves a half-made
// queue at path. The caller holds the queue lock, so no other process races the rename.
func (q *Queue) ensureFile() error {
	if _, err := os.Stat(q.path); err == nil {
		return nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("stat queue %s: %w", q.path, err)
	}
	if q.opts.NoCreate {
		return fmt.Errorf("%w at %s", ErrNoQueue, q.path)
	}
	tmp := q.path + ".create"
	if err := os.Remove(tmp); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("create queue %s: remove stale %s: %w", q.path, tmp, err)
	}
	db, err := bbolt.Open(tmp, 0o600, &bbolt.Options{Timeout: q.opts.LockTimeout})
	if err != nil {
		return fmt.Errorf("create queue %s: %w", q.path, err)
	}
	err = db.Update(func(tx *bbolt.Tx) error {
		meta, err := tx.CreateBucket(bucketMeta)
		if err != nil {
			return err
		}
		if _, err := tx.CreateBucket(bucketRecords); err != nil {
			return err
		}
		if err := meta.Put(keyMagic, []byte(queueMagic)); err != nil {
			return err
		}
		return meta.Put(keyFormat, binary.BigEndian.AppendUint32(nil, formatVersion))
	})
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, q.path)
	}
	if err == nil {
		err = syncDir(filepath.Dir(q.path))
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("create queue %s: %w", q.path, err)
	}
	if q.opened.Load() {
		// Sequence numbers restart with the new file; consumers that de-duplicate on them
		// need to hear about it.
		q.log.Warn("queue file was missing and has been recreated: sequence numbers restart at 1")
	} else {
		q.log.Info("created queue file")
	}
	return nil
}

// syncDir makes a rename in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
