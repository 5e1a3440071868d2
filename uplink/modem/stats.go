package modem

import (
	"maps"
	"slices"
	"sync"
)

// Stats counts what went over the UART since New.
type Stats struct {
	Commands      int64            // AT command lines written
	CIPSends      int64            // AT+CIPSEND chunks written
	ChunkSizes    []int            // payload bytes of each chunk, in order (first 8192)
	PayloadSent   int64            // TCP payload bytes accepted by the module
	PayloadRead   int64            // TCP payload bytes read with AT+CIPRXGET=2
	UARTWritten   int64            // bytes written to the port, framing included
	UARTRead      int64            // bytes read from the port, framing included
	URCs          map[string]int64 // unsolicited result codes by name ("CLOSED", "+CIPRXGET: 1", ...)
	GarbageBytes  int64            // bytes discarded as overlong lines or abandoned payloads
	DroppedEvents int64            // answers discarded because nobody waited for them
	LateAnswers   int64            // late finals of abandoned commands discarded before the next command
}

// statsRecorder is the mutable side of Stats.
type statsRecorder struct {
	mu sync.Mutex
	s  Stats
}

func (r *statsRecorder) update(f func(*Stats)) {
	r.mu.Lock()
	f(&r.s)
	r.mu.Unlock()
}

func (r *statsRecorder) snapshot() Stats {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.s
	s.ChunkSizes = slices.Clone(r.s.ChunkSizes)
	s.URCs = maps.Clone(r.s.URCs)
	if s.URCs == nil {
		s.URCs = map[string]int64{}
	}
	return s
}

func (r *statsRecorder) urc(name string) {
	r.update(func(s *Stats) {
		if s.URCs == nil {
			s.URCs = map[string]int64{}
		}
		s.URCs[name]++
	})
}

func (r *statsRecorder) chunk(n int) {
	r.update(func(s *Stats) {
		s.CIPSends++
		s.PayloadSent += int64(n)
		if len(s.ChunkSizes) < maxStatChunks {
			s.ChunkSizes = append(s.ChunkSizes, n)
		}
	})
}
