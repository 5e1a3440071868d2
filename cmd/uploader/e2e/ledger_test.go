package e2e

import (
	"fmt"
	"sort"
	"strings"
	"sync"
)

// ledger is what the enqueue calls of a scenario stored. A call that
// exited 0 promised its readings are on disk ("confirmed"); a call that was
// killed or failed promised nothing ("uncertain"), and because one call is
// one transaction, either all or none of its readings may arrive.
type ledger struct {
	mu        sync.Mutex
	confirmed map[string]bool
	uncertain map[string]int // id -> index into calls
	calls     [][]string     // the ids of each uncertain call
}

func newLedger() *ledger {
	return &ledger{confirmed: map[string]bool{}, uncertain: map[string]int{}}
}

func (l *ledger) confirm(ids []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, id := range ids {
		l.confirmed[id] = true
	}
}

func (l *ledger) uncertainCall(ids []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, id := range ids {
		l.uncertain[id] = len(l.calls)
	}
	l.calls = append(l.calls, ids)
}

func (l *ledger) confirmedCount() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.confirmed)
}

// allConfirmedIn reports whether every confirmed reading is among ds.
func (l *ledger) allConfirmedIn(ds []delivery) bool {
	seen := make(map[string]bool, len(ds))
	for _, d := range ds {
		seen[d.ID] = true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for id := range l.confirmed {
		if !seen[id] {
			return false
		}
	}
	return true
}

// tally compares what was enqueued with what a subscriber received.
type tally struct {
	enqueued   int            // confirmed readings
	received   map[string]int // id -> copies received
	lost       []string       // confirmed, never received
	dups       map[string]int // id -> copies beyond the first
	unexpected []string       // received, never enqueued
	// garbled lists deliveries whose payload is not a reading at all (no
	// id): bytes that were never enqueued reached the broker as a PUBLISH.
	garbled []string
	// torn lists uncertain calls of which some but not all readings arrived:
	// a broken transaction.
	torn []string
	// uncertainArrived counts the uncertain calls that arrived whole.
	uncertainArrived int
	uncertainCalls   int
}

func (l *ledger) tally(ds []delivery) tally {
	l.mu.Lock()
	defer l.mu.Unlock()
	tl := tally{enqueued: len(l.confirmed), received: map[string]int{}, dups: map[string]int{}, uncertainCalls: len(l.calls)}
	for _, d := range ds {
		if d.ID == "" {
			tl.garbled = append(tl.garbled, fmt.Sprintf("on %s with seq %q: %s", d.Topic, d.Seq, d.Garble))
			continue
		}
		tl.received[d.ID]++
		if !l.confirmed[d.ID] {
			if _, ok := l.uncertain[d.ID]; !ok {
				tl.unexpected = append(tl.unexpected, fmt.Sprintf("%q on %s", d.ID, d.Topic))
			}
		}
	}
	for id, n := range tl.received {
		if n > 1 {
			tl.dups[id] = n - 1
		}
	}
	for id := range l.confirmed {
		if tl.received[id] == 0 {
			tl.lost = append(tl.lost, id)
		}
	}
	sort.Strings(tl.lost)
	for i, ids := range l.calls {
		arrived := 0
		for _, id := range ids {
			if tl.received[id] > 0 {
				arrived++
			}
		}
		switch arrived {
		case 0:
		case len(ids):
			tl.uncertainArrived++
		default:
			tl.torn = append(tl.torn, fmt.Sprintf("call %d: %d of %d readings", i, arrived, len(ids)))
		}
	}
	return tl
}

// duplicates is the number of extra copies.
func (tl tally) duplicates() int {
	n := 0
	for _, c := range tl.dups {
		n += c
	}
	return n
}

func (tl tally) String() string {
	return fmt.Sprintf("enqueued %d, received %d distinct, lost %d, duplicates %d, unexpected %d, garbled %d",
		tl.enqueued, len(tl.received), len(tl.lost), tl.duplicates(), len(tl.unexpected), len(tl.garbled))
}

// firstN lists at most n items, for failure messages.
func firstN(items []string, n int) string {
	if len(items) > n {
		return strings.Join(items[:n], ", ") + fmt.Sprintf(" ... (%d in all)", len(items))
	}
	return strings.Join(items, ", ")
}

// seqProblems checks the MQTT 5 "seq" property: every delivery carries
// one, copies of one reading carry the same, different readings differ.
func seqProblems(ds []delivery) []string {
	var problems []string
	seqOf := map[string]string{}
	idOf := map[string]string{}
	for _, d := range ds {
		if d.ID == "" {
			continue // garbled: reported on its own
		}
		if d.Seq == "" {
			problems = append(problems, fmt.Sprintf("%s arrived without a seq property", d.ID))
			continue
		}
		if s, ok := seqOf[d.ID]; ok && s != d.Seq {
			problems = append(problems, fmt.Sprintf("%s arrived with seq %s and %s", d.ID, s, d.Seq))
		}
		if id, ok := idOf[d.Seq]; ok && id != d.ID {
			problems = append(problems, fmt.Sprintf("seq %s names both %s and %s", d.Seq, id, d.ID))
		}
		seqOf[d.ID], idOf[d.Seq] = d.Seq, d.ID
	}
	return problems
}
