package modem

import "sync"

// eventQueue hands events from the reader goroutine to the command that
// waits for them. It never blocks the reader: when nobody collects, the
// oldest events are dropped beyond eventBacklog.
type eventQueue struct {
	mu      sync.Mutex
	items   []event
	dropped int64
	notify  chan struct{} // capacity 1: "something was pushed"
}

func newEventQueue() *eventQueue {
	return &eventQueue{notify: make(chan struct{}, 1)}
}

func (q *eventQueue) push(ev event) {
	q.mu.Lock()
	if len(q.items) >= eventBacklog {
		q.items = q.items[1:]
		q.dropped++
	}
	q.items = append(q.items, ev)
	q.mu.Unlock()
	select {
	case q.notify <- struct{}{}:
	default:
	}
}

func (q *eventQueue) pop() (event, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.items) == 0 {
		return event{}, false
	}
	ev := q.items[0]
	q.items[0] = event{}
	q.items = q.items[1:]
	return ev, true
}

// clear discards stale answers (a late reply to a command that timed out)
// before a new command is sent; it returns how many were dropped.
func (q *eventQueue) clear() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	n := len(q.items)
	q.items = nil
	q.dropped += int64(n)
	return n
}

func (q *eventQueue) droppedCount() int64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.dropped
}
