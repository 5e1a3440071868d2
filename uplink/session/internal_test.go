package session

import (
	"testing"
	"testing/synctest"
	"time"
)

// Ensure packet identifiers cycle through 1..65535, never use 0 and skip
// identifiers still in flight.
func TestFreeID(t *testing.T) {
	tests := []struct {
		name     string
		last     uint16
		inflight []uint16
		want     uint16
	}{
		{"first", 0, nil, 1},
		{"next", 41, nil, 42},
		{"wraps past 65535 to 1", 65535, nil, 1},
		{"skips in flight", 10, []uint16{11, 12}, 13},
		{"wraps and skips", 65534, []uint16{65535, 1, 2}, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &session{nextID: tt.last, inflight: map[uint16]*flight{}}
			for _, id := range tt.inflight {
				s.inflight[id] = &flight{}
			}
			if got := s.freeID(); got != tt.want {
				t.Errorf("freeID() after %d with %v in flight = %d, want %d", tt.last, tt.inflight, got, tt.want)
			}
		})
	}
}

// Ensure aliases are handed out in order of first use up to the broker's
// maximum and never reassigned.
func TestAliasTable(t *testing.T) {
	tab := newAliasTable(2)
	steps := []struct {
		topic     string
		wantAlias uint16
		wantKnown bool
	}{
		{"a", 1, false},
		{"a", 1, true},
		{"b", 2, false},
		{"c", 0, false}, // table full: sent by name
		{"b", 2, true},
		{"c", 0, false},
	}
	for i, st := range steps {
		alias, known := tab.lookup(st.topic)
		if alias != st.wantAlias || known != st.wantKnown {
			t.Fatalf("step %d lookup(%q) = %d, %v; want %d, %v", i, st.topic, alias, known, st.wantAlias, st.wantKnown)
		}
		if alias != 0 && !known {
			tab.assign(st.topic, alias)
		}
	}
	if alias, _ := newAliasTable(0).lookup("a"); alias != 0 {
		t.Errorf("a table with maximum 0 handed out alias %d", alias)
	}
}

// Ensure message expiry is rounded up to whole seconds and capped.
func TestExpirySeconds(t *testing.T) {
	tests := []struct {
		in   time.Duration
		want uint32
	}{
		{time.Millisecond, 1},
		{time.Second, 1},
		{1500 * time.Millisecond, 2},
		{time.Hour, 3600},
		{200 * 365 * 24 * time.Hour, 1<<32 - 1},
	}
	for _, tt := range tests {
		if got := expirySeconds(tt.in); got != tt.want {
			t.Errorf("expirySeconds(%s) = %d, want %d", tt.in, got, tt.want)
		}
	}
}

// The window's byte budget follows the link's throughput from the first
// acknowledgement on: the wait for that one (a round trip, and on a first
// window the CONNACK's) must not count as a slow link, or the early budget
// is too small and the radio idles while it grows.
func TestWindowBudgetFromFirstAcknowledgement(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const (
			chunk = 1000
			rtt   = time.Second
			rate  = 2500 // bytes per second on the air
			size  = 100  // bytes per PUBLISH
			n     = 50
		)
		w := &window{chunkBytes: chunk}
		flights := make([]*flight, n)
		for i := range flights {
			flights[i] = &flight{}
			w.sent(flights[i], size)
		}
		// Two round trips before the first acknowledgement (connect and
		// CONNACK), then one every size/rate; the budget is looked at
		// after 50, when the first write is 4 s back.
		time.Sleep(2 * rtt)
		for _, f := range flights {
			w.landed(f)
			time.Sleep(size * time.Second / rate)
		}
		// The shortest wait is the first PUBLISH's, 2 s, so the product is
		// rate × 2 s. Counting from the first write would give half the
		// rate at this point.
		want := budgetFactor*rate*2 + budgetChunks*chunk
		if w.budget < want*95/100 || w.budget > want*105/100 {
			t.Errorf("budget %d bytes, want about %d (4 × %d B/s × 2 s + 2 chunks)", w.budget, want, rate)
		}
	})
}
