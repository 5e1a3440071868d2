package testkit

import (
	"sync"
	"time"
)

// Notifier broadcasts "something changed" to any number of waiters. A fake
// calls Notify after each change of its state (a command received, a byte
// written); a test calls WaitUntil with a condition on that state. The zero
// value is ready to use; a Notifier must not be copied after first use.
type Notifier struct {
	mu sync.Mutex
	ch chan struct{} // closed and replaced by Notify
}

// Notify wakes every current waiter so it re-checks its condition.
func (n *Notifier) Notify() {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.ch != nil {
		close(n.ch)
		n.ch = nil
	}
}

// changed returns a channel that Notify closes.
func (n *Notifier) changed() <-chan struct{} {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.ch == nil {
		n.ch = make(chan struct{})
	}
	return n.ch
}

// WaitUntil returns true as soon as cond holds, checking it now and after
// every Notify, or false once timeout has passed without it holding. cond
// must read the state under whatever lock protects it.
func (n *Notifier) WaitUntil(timeout time.Duration, cond func() bool) bool {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		// Take the channel before checking, so a Notify between the
		// check and the select is not lost.
		ch := n.changed()
		if cond() {
			return true
		}
		select {
		case <-ch:
		case <-timer.C:
			return cond()
		}
	}
}
