package session

import "time"

// The in-flight window. Records are sent while fewer than inflightMax
// (InFlight, lowered by the broker's Receive Maximum) are unacknowledged
// and, once the link has been measured, while their bytes stay under a
// budget of four bandwidth-delay products plus two chunks. The product is
// the acknowledged PUBLISH bytes per second since the first acknowledgement
// times the shortest time a PUBLISH waited for its acknowledgement. That
// time includes how late the connection read the reply (a modem reads at
// most every 1.5 round trips while the session is sending), so the budget
// covers the read cadence too; the factor leaves room for the air queue to stay full while a
// batch of acknowledgements is on its way. A window limited by the budget
// still grows: its throughput is the budget per round trip, and the next
// budget is four times that. The budget never falls below four chunks.
//
// Bytes beyond the product only wait in the module's buffer and, should the
// window fail, are sent again in the next one; too few leave the radio idle
// between acknowledgements, which on NB-IoT is the energy the window exists
// to save.
const (
	budgetFactor = 4
	budgetChunks = 2
	minBudget    = 4 // chunks
)

// window is the byte side of the in-flight accounting.
type window struct {
	bytes      int       // PUBLISH bytes in flight
	firstAck   time.Time // first acknowledgement
	ackedFirst int64     // PUBLISH bytes acknowledged up to the first acknowledgement
	acked      int64     // PUBLISH bytes acknowledged
	count      int64     // PUBLISHes acknowledged
	minRTT     time.Duration
	budget     int // 0 until measured: no byte limit
	chunkBytes int
}

// sent adds a QoS 1/2 PUBLISH of size bytes to the window.
func (w *window) sent(f *flight, size int) {
	f.size, f.sent = size, time.Now()
	w.bytes += size
}

// landed removes an acknowledged (or refused) flight and updates the budget.
func (w *window) landed(f *flight) {
	w.bytes -= f.size
	now := time.Now()
	w.acked += int64(f.size)
	w.count++
	if rtt := now.Sub(f.sent); w.minRTT == 0 || rtt < w.minRTT {
		w.minRTT = max(rtt, time.Millisecond)
	}
	if w.firstAck.IsZero() {
		w.firstAck, w.ackedFirst = now, w.acked
	}
	// The rate counts from the first acknowledgement, not the first write:
	// the wait for the first one is the round trip (and on a first window
	// the CONNACK's), not the link's throughput, and counting it would
	// halve the early budget and idle the radio while it grows.
	acked, elapsed := w.acked-w.ackedFirst, now.Sub(w.firstAck)
	if acked < int64(budgetChunks*w.chunkBytes) || elapsed <= 0 {
		return
	}
	rate := float64(acked) / elapsed.Seconds()
	bdp := rate * w.minRTT.Seconds()
	w.budget = max(minBudget*w.chunkBytes, int(budgetFactor*bdp)+budgetChunks*w.chunkBytes)
}

// windowFull reports whether no QoS 1/2 PUBLISH may be added.
func (s *session) windowFull() bool {
	return len(s.inflight) >= s.inflightMax || (s.win.budget > 0 && s.win.bytes >= s.win.budget)
}

// windowReopened reports whether a full window has drained to half, in
// records and in bytes, so the writes after a wait carry whole chunks
// rather than one PUBLISH per acknowledgement (reopening at one chunk free
// cut a fifth of the chunks short on a fast link). Half a window of 4
// bandwidth-delay products still keeps the link busy while it refills.
func (s *session) windowReopened() bool {
	if len(s.inflight) > s.inflightMax-max(1, s.inflightMax/2) {
		return false
	}
	return s.win.budget == 0 || s.win.bytes <= s.win.budget/2
}
