package queue

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"
)

// Queue is a handle on a queue file. It holds no file open between calls, so it is cheap to keep
// for the life of a process. Its methods are safe for concurrent use.
type Queue struct {
	path   string
	opts   Options
	log    *slog.Logger
	closed atomic.Bool
	opened atomic.Bool // Open validated the file; a missing file later means it was deleted

	// onLockWait, when set (by tests and benchmarks), receives how long each call waited for
	// the queue's locks.
	onLockWait func(time.Duration)
}

// Open checks (creating if absent, with parent dir) the queue file at path and its format version,
// then releases it: the returned *Queue does NOT hold the bbolt file open between calls. With
// Options.NoCreate a missing file is an ErrNoQueue error and nothing is created, not even the
// lock files.
func Open(path string, opts *Options) (*Queue, error) {
	if path == "" {
		return nil, fmt.Errorf("open queue: %w", errEmptyPath)
	}
	q := &Queue{path: filepath.Clean(path), opts: opts.withDefaults()}
	q.log = q.opts.Logger.With(slog.String("queue", q.path))
	if q.opts.Policy != DropOldest && q.opts.Policy != RejectNew {
		return nil, fmt.Errorf("open queue %s: unknown policy %d", q.path, q.opts.Policy)
	}
	if q.opts.MaxRecords < 0 || q.opts.MaxBytes < 0 {
		return nil, fmt.Errorf("open queue %s: negative limit", q.path)
	}
	if q.opts.NoCreate {
		// Checked before the lock: taking it would create the lock files beside a mistyped path.
		if err := q.checkExists(); err != nil {
			return nil, err
		}
	} else if err := os.MkdirAll(filepath.Dir(q.path), 0o700); err != nil {
		return nil, fmt.Errorf("create queue directory %s: %w", filepath.Dir(q.path), err)
	}
	if err := q.view(func(*txn) error { return nil }); err != nil {
		return nil, err
	}
	q.opened.Store(true)
	return q, nil
}

// checkExists is the NoCreate test: ErrNoQueue when nothing is at the path.
func (q *Queue) checkExists() error {
	_, err := os.Stat(q.path)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("%w at %s", ErrNoQueue, q.path)
	default:
		return fmt.Errorf("stat queue %s: %w", q.path, err)
	}
}

// Path returns the queue file's path as given to Open (cleaned).
func (q *Queue) Path() string { return q.path }

// Close marks the handle closed; later calls fail with ErrClosed. Since no file is held open
// between calls there is nothing to flush, and calling Close twice is harmless.
func (q *Queue) Close() error {
	q.closed.Store(true)
	return nil
}

func (q *Queue) checkOpen() error {
	if q.closed.Load() {
		return fmt.Errorf("queue %s: %w", q.path, ErrClosed)
	}
	return nil
}
