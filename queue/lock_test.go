package queue

import (
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/nbiot-uploader/uploader/uplink/testkit"
)

// Ensure a held queue lock makes callers wait and then fail with a BusyError naming the path.
func TestBusyWhenQueueLockHeld(t *testing.T) {
	path := filepath.Join(t.TempDir(), "q.db")
	q := mustOpenPath(t, path, &Options{BusyTimeout: 150 * time.Millisecond})
	lock, err := acquireLock(path, time.Now().Add(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = q.Enqueue(rec("t", "x"))
	waited := time.Since(start)
	if err := lock.release(); err != nil {
		t.Fatal(err)
	}
	assertBusy(t, err, path)
	if waited < 150*time.Millisecond {
		t.Fatalf("gave up after %v, before BusyTimeout", waited)
	}
	mustEnqueue(t, q, rec("t", "after release"))
}

// Ensure a foreign program holding bbolt's own lock (such as the bbolt CLI) is also reported
// as busy, after retrying with LockTimeout per attempt.
func TestBusyWhenBboltLockHeldByForeignProgram(t *testing.T) {
	path := filepath.Join(t.TempDir(), "q.db")
	q := mustOpenPath(t, path, &Options{LockTimeout: 20 * time.Millisecond, BusyTimeout: 120 * time.Millisecond})
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	_, err = q.Enqueue(rec("t", "x"))
	if cerr := db.Close(); cerr != nil {
		t.Fatal(cerr)
	}
	assertBusy(t, err, path)
	mustEnqueue(t, q, rec("t", "after release"))
}

// Ensure a caller that meets a lock released within BusyTimeout just waits and succeeds.
func TestWaitsForLockThenSucceeds(t *testing.T) {
	path := filepath.Join(t.TempDir(), "q.db")
	q := mustOpenPath(t, path, &Options{BusyTimeout: 5 * time.Second})
	lock, err := acquireLock(path, time.Now().Add(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	var waits []time.Duration
	q.onLockWait = func(d time.Duration) { waits = append(waits, d) }
	timer := time.AfterFunc(50*time.Millisecond, func() { _ = lock.release() })
	defer timer.Stop()
	mustEnqueue(t, q, rec("t", "x"))
	if len(waits) != 1 || waits[0] < 40*time.Millisecond {
		t.Fatalf("lock waits=%v, want one of about 50ms", waits)
	}
}

func assertBusy(t *testing.T, err error, path string) {
	t.Helper()
	if !errors.Is(err, ErrBusy) {
		t.Fatalf("err=%v, want ErrBusy", err)
	}
	var be *BusyError
	if !errors.As(err, &be) || be.Path != path {
		t.Fatalf("err=%#v, want *BusyError for %s", err, path)
	}
	if !strings.Contains(err.Error(), "queue "+path+" is busy") {
		t.Fatalf("err=%q does not say the queue is busy and name the path", err)
	}
}

// Ensure many handles (as separate sensor processes would have) enqueue concurrently without
// losing or duplicating anything.
func TestConcurrentEnqueuers(t *testing.T) {
	path := filepath.Join(t.TempDir(), "q.db")
	drain := mustOpenPath(t, path, nil)
	const writers, each = 4, 25
	var wg sync.WaitGroup
	seqs := make([][]uint64, writers)
	errs := make([]error, writers)
	for w := range writers {
		wg.Go(func() {
			q, err := Open(path, nil)
			if err != nil {
				errs[w] = err
				return
			}
			defer q.Close()
			for range each {
				s, err := q.Enqueue(rec("t", "x"))
				if err != nil {
					errs[w] = err
					return
				}
				seqs[w] = append(seqs[w], s...)
			}
		})
	}
	// Drain concurrently, the way the daemon does.
	var acked []uint64
	drainOnce := func() bool {
		batch := mustRead(t, drain, 0, 10, 0)
		if err := drain.Ack(seqsOf(batch)); err != nil {
			t.Fatal(err)
		}
		acked = append(acked, seqsOf(batch)...)
		return len(acked) >= writers*each
	}
	// An empty read means the writers are behind: check again on the next
	// tick, and give up (failing) only if they stop altogether.
	testkit.Eventually(t, time.Minute, drainOnce, "the writers' records were not all drained")
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	all := slices.Concat(seqs...)
	slices.Sort(all)
	slices.Sort(acked)
	if !slices.Equal(all, acked) || len(slices.Compact(slices.Clone(all))) != writers*each {
		t.Fatalf("enqueued %v, drained %v", all, acked)
	}
}

// Ensure a waiter is let in between the operations of a holder that re-takes the lock in a
// tight loop (a draining window) instead of starving: count how many times the holder takes
// the lock while the waiter waits. With the gate that is one or two; without it, dozens.
func TestGateLetsWaiterIn(t *testing.T) {
	path := filepath.Join(t.TempDir(), "q.db")
	stop := make(chan struct{})
	holderDone := make(chan error)
	var holderOps atomic.Int64
	go func() {
		for {
			select {
			case <-stop:
				holderDone <- nil
				return
			default:
			}
			lock, err := acquireLock(path, time.Now().Add(10*time.Second))
			if err != nil {
				holderDone <- err
				return
			}
			holderOps.Add(1)
			time.Sleep(time.Millisecond) // one short transaction: the holder's work, not a wait
			if err := lock.release(); err != nil {
				holderDone <- err
				return
			}
		}
	}()
	testkit.Eventually(t, 10*time.Second, func() bool { return holderOps.Load() >= 3 }, "the holder did not take the lock three times")
	var overtaken []int64
	for range 50 {
		before := holderOps.Load()
		lock, err := acquireLock(path, time.Now().Add(10*time.Second))
		if err != nil {
			t.Fatalf("waiter: %v", err)
		}
		overtaken = append(overtaken, holderOps.Load()-before)
		if err := lock.release(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Millisecond) // the waiter's pace between attempts, not a wait for an event
	}
	close(stop)
	if err := <-holderDone; err != nil {
		t.Fatal(err)
	}
	slices.Sort(overtaken)
	t.Logf("holder operations while waiting: %v", overtaken)
	if p90 := overtaken[len(overtaken)*9/10]; p90 > 3 {
		t.Fatalf("90th percentile: the holder went %d times while the waiter waited, want at most 3", p90)
	}
}
