package queue

import (
	"errors"
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// Lock files live next to the queue file and are never replaced, unlike the queue file itself
// (Compact renames a new file over it). A process that waited on bbolt's own lock of the old
// file would otherwise write into an unlinked inode after a compaction and lose records.
//
// The main lock serialises every operation. The gate in front of it makes waiting fair: a
// waiter holds the gate while polling the main lock, so the holder, coming back for its next
// batch, has to queue behind it instead of grabbing the main lock again at once.
const (
	lockSuffix = ".lock"
	gateSuffix = ".gate"

	pollMin = 200 * time.Microsecond
	pollMax = 2 * time.Millisecond
)

// heldLock is the main lock file, held exclusively (flock is per open file, so two *Queue values
// in one process exclude each other too).
type heldLock struct{ f *os.File }

func (l *heldLock) release() error {
	if l == nil || l.f == nil {
		return nil
	}
	err := l.f.Close() // closing the last descriptor drops the flock
	l.f = nil
	return err
}

// openLockFile opens (creating when allowed) a lock file. On a read-only file system an
// existing lock file can still be locked through a read-only descriptor.
func openLockFile(name string) (*os.File, error) {
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o600)
	if err == nil {
		return f, nil
	}
	if errors.Is(err, unix.EROFS) || errors.Is(err, os.ErrPermission) {
		if ro, roErr := os.Open(name); roErr == nil {
			return ro, nil
		}
	}
	return nil, err
}

// acquireLock takes the gate, then the main lock, then lets go of the gate. It polls with
// non-blocking flock until deadline, because a blocking flock cannot be given a timeout.
func acquireLock(path string, deadline time.Time) (*heldLock, error) {
	gate, err := openLockFile(path + gateSuffix)
	if err != nil {
		return nil, fmt.Errorf("open queue lock %s: %w", path+gateSuffix, err)
	}
	defer gate.Close()
	if err := pollFlock(gate, deadline); err != nil {
		return nil, err
	}
	main, err := openLockFile(path + lockSuffix)
	if err != nil {
		return nil, fmt.Errorf("open queue lock %s: %w", path+lockSuffix, err)
	}
	if err := pollFlock(main, deadline); err != nil {
		main.Close()
		return nil, err
	}
	return &heldLock{f: main}, nil
}

func pollFlock(f *os.File, deadline time.Time) error {
	wait := pollMin
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			return nil
		}
		if !errors.Is(err, unix.EWOULDBLOCK) && !errors.Is(err, unix.EINTR) {
			return fmt.Errorf("lock %s: %w", f.Name(), err)
		}
		left := time.Until(deadline)
		if left <= 0 {
			return errLockDeadline
		}
		pause(min(wait, left))
		wait = min(wait*2, pollMax)
	}
}

// pause waits d. There is no context to watch here: the total wait is bounded by the deadline.
func pause(d time.Duration) {
	t := time.NewTimer(d)
	<-t.C
}
