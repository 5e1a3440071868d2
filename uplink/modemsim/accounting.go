package modemsim

import (
	"sync"
	"time"
)

// Accounting is what a window cost, as the module saw it. Durations come
// from the simulator's clock: virtual time with Config.VirtualClock, wall
// time otherwise.
type Accounting struct {
	// RadioOnSeconds is the time spent with CFUN=1 while powered.
	RadioOnSeconds float64 `json:"radio_on_seconds"`
	// AttachSeconds is the part of RadioOnSeconds spent before the network
	// registration completed (all of it if it never did).
	AttachSeconds float64 `json:"attach_seconds"`
	// PoweredSeconds is the time the module was powered, boots included.
	PoweredSeconds float64 `json:"powered_seconds"`
	// ElapsedSeconds is the clock time since the start or the last reset.
	ElapsedSeconds float64 `json:"elapsed_seconds"`
	// RadioOnPeriods counts switches of the radio to on.
	RadioOnPeriods int `json:"radio_on_periods"`

	UARTBytesIn  int64 `json:"uart_bytes_in"`  // host -> module, while powered
	UARTBytesOut int64 `json:"uart_bytes_out"` // module -> host
	// AirBytesUp/Down count TCP payload plus 40 bytes of IPv4+TCP header per
	// segment, the segments of the handshake and teardown, and the pure
	// ACK segments the peer and the module send for each other's data.
	AirBytesUp   int64 `json:"air_bytes_up"`
	AirBytesDown int64 `json:"air_bytes_down"`

	ATCommands     int `json:"at_commands"`     // command lines received
	CIPSENDCalls   int `json:"cipsend_calls"`   // AT+CIPSEND commands that opened a prompt
	LargestChunk   int `json:"largest_chunk"`   // largest payload accepted by one CIPSEND
	TCPConnections int `json:"tcp_connections"` // CONNECT OKs
	AckQueries     int `json:"ack_queries"`     // AT+CIPACK commands answered
	Reboots        int `json:"reboots"`         // resets and spontaneous reboots

	// The receive side of manual mode: AT+CIPRXGET=4 queries, =2/3 reads
	// (and how many of those found nothing), "+CIPRXGET: 1" URCs sent, and
	// the UART the =2/3/4 exchanges took: bytes both ways with echo but
	// without the payload read, and those bytes at the line rate plus one
	// Turnaround per command.
	RxPolls       int     `json:"rx_polls"`
	RxReads       int     `json:"rx_reads"`
	RxEmptyReads  int     `json:"rx_empty_reads"`
	RxURCs        int     `json:"rx_urcs"`
	RxUARTBytes   int64   `json:"rx_uart_bytes"`
	RxUARTSeconds float64 `json:"rx_uart_seconds"`

	MQTTBytesUp   int64 `json:"mqtt_bytes_up"`   // payload forwarded to the broker
	MQTTBytesDown int64 `json:"mqtt_bytes_down"` // payload received from the broker
	LostBytesUp   int64 `json:"lost_bytes_up"`   // payload accepted but never delivered (faults)
	// DroppedAtCloseBytes is payload a quick close (AT+CIPCLOSE=1,
	// AT+CIPSHUT) dropped because its transfer had not finished. On the
	// real-time clock it never reaches the broker; on the virtual clock the
	// broker already has it and this only counts what a module would drop.
	DroppedAtCloseBytes int64 `json:"dropped_at_close_bytes"`

	// MQTTStream is every byte forwarded to the broker, in order, all
	// connections concatenated; MQTTStreams holds the same per connection.
	MQTTStream  []byte   `json:"-"`
	MQTTStreams [][]byte `json:"-"`
	// ChunkSizes is the payload of each CIPSEND, in order (the first
	// maxChunkSizes), so tests can see where the host cut its stream.
	ChunkSizes []int `json:"-"`
}

const maxChunkSizes = 1 << 16

// accountant keeps Accounting current for concurrent readers. The module
// goroutine writes; Sim.Accounting reads.
type accountant struct {
	clk *clock

	mu          sync.Mutex // guards everything below
	counts      Accounting // counters only; durations are derived in snapshot
	base        time.Duration
	radioOn     bool
	radioFrom   time.Duration
	attachAt    time.Duration // instant of registration; never if attachNever
	attachNever bool
	radioTotal  time.Duration
	attachTotal time.Duration
	powered     bool
	poweredFrom time.Duration
	powerTotal  time.Duration
}

func newAccountant(clk *clock) *accountant { return &accountant{clk: clk} }

// add applies f to the counters under the lock.
func (a *accountant) add(f func(*Accounting)) {
	a.mu.Lock()
	defer a.mu.Unlock()
	f(&a.counts)
}

func (a *accountant) setPowered(on bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	now := a.clk.now()
	switch {
	case on && !a.powered:
		a.powered, a.poweredFrom = true, now
	case !on && a.powered:
		a.powered = false
		a.powerTotal += now - a.poweredFrom
	}
}

// radioSwitchedOn starts a radio-on period whose registration completes at
// attachAt, or never.
func (a *accountant) radioSwitchedOn(attachAt time.Duration, never bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.radioOn {
		return
	}
	a.radioOn, a.radioFrom = true, a.clk.now()
	a.attachAt, a.attachNever = attachAt, never
	a.counts.RadioOnPeriods++
}

func (a *accountant) radioSwitchedOff() {
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.radioOn {
		return
	}
	now := a.clk.now()
	a.radioTotal += now - a.radioFrom
	a.attachTotal += a.openAttach(now)
	a.radioOn = false
}

// openAttach is the attach time of the running radio period up to now.
func (a *accountant) openAttach(now time.Duration) time.Duration {
	end := now
	if !a.attachNever && a.attachAt < end {
		end = a.attachAt
	}
	return max(0, end-a.radioFrom)
}

func (a *accountant) appendStream(forwarded []byte) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.counts.MQTTBytesUp += int64(len(forwarded))
	a.counts.MQTTStream = append(a.counts.MQTTStream, forwarded...)
	if n := len(a.counts.MQTTStreams); n > 0 {
		a.counts.MQTTStreams[n-1] = append(a.counts.MQTTStreams[n-1], forwarded...)
	}
}

func (a *accountant) snapshot() Accounting {
	a.mu.Lock()
	defer a.mu.Unlock()
	now := a.clk.now()
	s := a.counts
	s.MQTTStream = append([]byte(nil), a.counts.MQTTStream...)
	s.ChunkSizes = append([]int(nil), a.counts.ChunkSizes...)
	s.MQTTStreams = make([][]byte, len(a.counts.MQTTStreams))
	for i, st := range a.counts.MQTTStreams {
		s.MQTTStreams[i] = append([]byte(nil), st...)
	}
	radio, attach, power := a.radioTotal, a.attachTotal, a.powerTotal
	if a.radioOn {
		radio += now - a.radioFrom
		attach += a.openAttach(now)
	}
	if a.powered {
		power += now - a.poweredFrom
	}
	s.RadioOnSeconds = radio.Seconds()
	s.AttachSeconds = attach.Seconds()
	s.PoweredSeconds = power.Seconds()
	s.ElapsedSeconds = (now - a.base).Seconds()
	return s
}

// reset zeroes everything; running periods restart now.
func (a *accountant) reset() {
	a.mu.Lock()
	defer a.mu.Unlock()
	now := a.clk.now()
	a.counts = Accounting{}
	a.base = now
	a.radioTotal, a.attachTotal, a.powerTotal = 0, 0, 0
	if a.radioOn {
		a.radioFrom = now
	}
	if a.powered {
		a.poweredFrom = now
	}
}

// beginStream opens the per-connection stream of a new TCP connection.
func (a *accountant) beginStream() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.counts.TCPConnections++
	a.counts.MQTTStreams = append(a.counts.MQTTStreams, []byte{})
}

// attachChanged moves the registration instant of the running radio period.
func (a *accountant) attachChanged(at time.Duration) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.attachAt, a.attachNever = at, false
}
