package uplink

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"

	"github.com/nbiot-uploader/uploader/queue"
)

// planNote is the queue note holding the daemon's next planned window.
const planNote = "next-window"

// ErrDaemonRunning: another `uploader run` already serves this queue.
var ErrDaemonRunning = errors.New("daemon already running")

// StoredPlan is the daemon's next planned window as stored in the queue
// file, so `status` (and whoever reads the file) can tell when the site
// will next be heard, without recomputing it from its own flags.
type StoredPlan struct {
	Plan
	PlannedAt time.Time `json:"planned_at"`
	PID       int       `json:"pid"`
}

// StorePlan records p in the queue file.
func StorePlan(q *queue.Queue, p Plan) error {
	data, err := json.Marshal(StoredPlan{Plan: p, PlannedAt: time.Now().UTC(), PID: os.Getpid()})
	if err != nil {
		return err
	}
	return q.UpdateNote(planNote, func([]byte) ([]byte, error) { return data, nil })
}

// ReadPlan returns the stored plan, nil when no daemon ever stored one.
func ReadPlan(q *queue.Queue) (*StoredPlan, error) {
	data, err := q.Note(planNote)
	if err != nil || len(data) == 0 {
		return nil, err
	}
	var p StoredPlan
	if err := json.Unmarshal(data, &p); err != nil {
		return nil, fmt.Errorf("parse the stored plan: %w", err)
	}
	return &p, nil
}

// DaemonLock is held by `uploader run` for as long as it serves a queue:
// one daemon per queue, and `status` can tell whether one is running.
type DaemonLock struct{ l *fileLock }

func daemonLockPath(queuePath string) string { return queuePath + ".daemon.lock" }

// AcquireDaemonLock takes the daemon lock of the queue at queuePath, or
// fails with ErrDaemonRunning naming the holder (after 2 s, which rides
// over a `status` looking at it).
func AcquireDaemonLock(queuePath string) (*DaemonLock, error) {
	l, err := acquireLock(context.Background(), daemonLockPath(queuePath), ErrDaemonRunning, "uploader run", 2*time.Second)
	if err != nil {
		return nil, err
	}
	return &DaemonLock{l: l}, nil
}

// Release unlocks. Safe to call more than once.
func (d *DaemonLock) Release() error {
	if d == nil {
		return nil
	}
	return d.l.release()
}

// DaemonHolder reports whether a daemon holds the queue at queuePath, and
// who, without creating anything.
func DaemonHolder(queuePath string) (holder string, running bool, err error) {
	path := daemonLockPath(queuePath)
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("daemon lock %s: %w", path, err)
	}
	defer f.Close()
	switch err := unix.Flock(int(f.Fd()), unix.LOCK_SH|unix.LOCK_NB); {
	case errors.Is(err, unix.EWOULDBLOCK):
		return readHolder(path), true, nil
	case err != nil:
		return "", false, fmt.Errorf("daemon lock %s: %w", path, err)
	}
	_ = unix.Flock(int(f.Fd()), unix.LOCK_UN)
	return "", false, nil
}
