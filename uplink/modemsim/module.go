package modemsim

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// writeStall is how long the module waits for a host that does not read
// before it drops its output, so a forgotten port cannot wedge it.
const writeStall = 2 * time.Second

// event is something the module does at a modelled instant.
type event struct {
	due time.Duration
	// awaited events are what the host is blocked on (SEND OK in normal
	// mode, CONNECT OK, the end of a boot): on the virtual clock they fire as
	// soon as the module is idle. Other events (data from the broker, a
	// remote close, registration URCs) wait until the host has been silent
	// for Config.VirtualIdle, so a host that keeps sending is not pushed
	// into the future by them.
	awaited bool
	// passive events never make the virtual clock jump: they happen only
	// when other activity brings the clock to them (the RxURCRepeat
	// reminder, which would otherwise move time on whenever the host
	// chose not to read yet).
	passive bool
	epoch   uint64 // power epoch the event belongs to
	seq     uint64
	fn      func()
}

// module is the simulated SIM7000. All its fields belong to the goroutine
// running loop; other goroutines talk to it through post.
type module struct {
	cfg  Config
	log  *slog.Logger
	ctx  context.Context
	out  io.Writer
	clk  *clock
	acct *accountant

	posted chan func()
	events []*event
	seq    uint64
	epoch  uint64 // bumped at power-off and reset: stale events are dropped
	wg     sync.WaitGroup

	connsMu sync.Mutex // guards conns
	conns   map[net.Conn]struct{}

	power   powerState
	hung    bool
	vol     volatileSettings
	saved   savedSettings
	attach  radioPeriod
	inFree  time.Duration // UART input busy until
	outFree time.Duration // UART output busy until
	// outStalled is set once the host failed to read for writeStall; later
	// writes give up at once until one goes through.
	outStalled bool

	line         []byte
	lineOverflow bool
	data         *dataEntry
	echoPending  []byte

	link        *link
	linkSeq     int
	airBusy     time.Duration // air uplink busy until
	brokerHas   time.Duration // modelled finish of the last uplink data handed to the broker
	downBusy    time.Duration // air downlink busy until
	downPending *segment      // downlink segment not yet delivered
	rx          []byte        // receive buffer (manual mode)
	rxBacklog   []byte        // arrived data that did not fit in rx
	rxReads     uint64        // AT+CIPRXGET=2/3 answered, for RxURCRepeat
	rxRepeating bool          // an RxURCRepeat reminder is scheduled
	// rxCmd is the mode of the AT+CIPRXGET=2/3/4 being answered (0 for
	// other commands) and rxPayload the payload characters of its answer,
	// for the receive accounting.
	rxCmd     int
	rxPayload int

	// quietV and quietR are the virtual and real instants since which the
	// host has had nothing new to react to (Config.HostTime).
	quietV time.Duration
	quietR time.Time

	faults  faultState
	garbage *rand.Rand
	err     error

	poweredFlag atomic.Bool
	radioFlag   atomic.Bool
	// inputDone counts the host's bytes input has finished with, whatever
	// the power state: a test that has sent n bytes waits for n here
	// before it checks that the module said nothing.
	inputDone atomic.Int64
}

func newModule(ctx context.Context, cfg Config, out io.Writer) *module {
	clk := newClock(cfg.VirtualClock)
	m := &module{
		cfg:     cfg,
		log:     cfg.Logger,
		ctx:     ctx,
		out:     out,
		clk:     clk,
		acct:    newAccountant(clk),
		posted:  make(chan func(), 64),
		conns:   map[net.Conn]struct{}{},
		saved:   defaultSaved(),
		faults:  faultState{Faults: cfg.Faults},
		garbage: rand.New(rand.NewPCG(7000, 1351)),
	}
	m.vol = defaultVolatile()
	if !cfg.StartPoweredOff {
		m.power = powerReady
		m.poweredFlag.Store(true)
		m.acct.setPowered(true)
		if !cfg.StartRadioOff {
			m.setCFUN(1, false)
		}
	}
	return m
}

// post hands fn to the module goroutine; it gives up when the module stops.
func (m *module) post(fn func()) bool {
	select {
	case m.posted <- fn:
		return true
	case <-m.ctx.Done():
		return false
	}
}

// call runs fn on the module goroutine and waits for it.
func (m *module) call(fn func()) bool {
	done := make(chan struct{})
	if !m.post(func() { fn(); close(done) }) {
		return false
	}
	select {
	case <-done:
		return true
	case <-m.ctx.Done():
		return false
	}
}

// schedule runs fn at instant due of the current power epoch.
func (m *module) schedule(due time.Duration, awaited bool, fn func()) *event {
	m.seq++
	e := &event{due: due, awaited: awaited, epoch: m.epoch, seq: m.seq, fn: fn}
	m.events = append(m.events, e)
	return e
}

// nextEvent is the earliest pending event, in scheduling order on ties.
func (m *module) nextEvent() (int, *event) {
	best := -1
	for i, e := range m.events {
		if best < 0 || e.due < m.events[best].due || (e.due == m.events[best].due && e.seq < m.events[best].seq) {
			best = i
		}
	}
	if best < 0 {
		return -1, nil
	}
	return best, m.events[best]
}

// nextActive is the earliest event that is not passive.
func (m *module) nextActive() (int, *event) {
	best := -1
	for i, e := range m.events {
		if e.passive {
			continue
		}
		if best < 0 || e.due < m.events[best].due || (e.due == m.events[best].due && e.seq < m.events[best].seq) {
			best = i
		}
	}
	if best < 0 {
		return -1, nil
	}
	return best, m.events[best]
}

func (m *module) fire(i int) {
	e := m.events[i]
	m.events = append(m.events[:i], m.events[i+1:]...)
	if e.epoch != m.epoch {
		return
	}
	m.wait(e.due)
	e.fn()
}

// loop is the module: it serves posted work (host input, network news,
// power switches) and fires modelled events when their time comes.
func (m *module) loop() {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for m.err == nil {
		select {
		case fn := <-m.posted:
			fn()
			continue
		case <-m.ctx.Done():
			return
		default:
		}
		i, next := m.nextEvent()
		var wake <-chan time.Time
		now := m.clk.now()
		if next != nil {
			if next.due <= now || next.epoch != m.epoch || (m.clk.virtual && next.awaited) {
				m.fire(i)
				continue
			}
			if m.clk.virtual && next.passive {
				i, next = m.nextActive()
			}
		}
		if next != nil {
			if m.clk.virtual {
				timer.Reset(m.cfg.VirtualIdle)
			} else {
				timer.Reset(next.due - now)
			}
			wake = timer.C
		}
		select {
		case fn := <-m.posted:
			fn()
		case <-wake:
			if m.clk.virtual {
				// The host has gone quiet: it is waiting for the network.
				// Whether or not the event tells the host anything, its
				// silence from here on is measured from the event.
				m.fire(i)
				m.markQuiet()
			}
		case <-m.ctx.Done():
			return
		}
		timer.Stop()
	}
}

// wait moves the module to instant t (sleeping in real time).
func (m *module) wait(t time.Duration) {
	if err := m.clk.waitUntil(m.ctx, t); err != nil && m.err == nil {
		m.err = err
	}
}

// delay is wait relative to now.
func (m *module) delay(d time.Duration) {
	if d > 0 {
		m.wait(m.clk.now() + d)
	}
}

// talking reports whether the module currently drives its UART.
func (m *module) talking() bool { return m.power == powerReady && !m.hung && m.err == nil }

// write sends b to the host, paced at the configured baud rate.
func (m *module) write(b []byte) {
	if !m.talking() {
		m.echoPending = m.echoPending[:0]
		return
	}
	if len(m.echoPending) > 0 {
		pending := m.echoPending
		m.echoPending = nil
		m.write(pending)
	}
	if len(b) == 0 {
		return
	}
	chunk := len(b)
	if !m.clk.virtual && m.cfg.Baud > 0 {
		// About 10 ms of line time per write keeps real-time pacing smooth.
		chunk = max(1, m.cfg.Baud/1000)
	}
	for len(b) > 0 && m.err == nil {
		n := min(chunk, len(b))
		m.outFree = max(m.clk.now(), m.outFree) + uartTime(n, m.cfg.Baud)
		m.wait(m.outFree)
		// Counted first, so a host that has read the bytes sees them counted.
		m.acct.add(func(a *Accounting) { a.UARTBytesOut += int64(n) })
		if d, ok := m.out.(interface{ SetWriteDeadline(time.Time) error }); ok {
			stall := writeStall
			if m.outStalled {
				stall = time.Millisecond
			}
			_ = d.SetWriteDeadline(time.Now().Add(stall))
		}
		written, err := m.out.Write(b[:n])
		if errors.Is(err, os.ErrDeadlineExceeded) {
			// Nobody reads the port: a UART loses what it cannot deliver.
			if !m.outStalled {
				m.log.Debug("host not reading; dropping output")
			}
			m.outStalled = true
			m.acct.add(func(a *Accounting) { a.UARTBytesOut -= int64(n - written) })
			return
		}
		m.outStalled = false
		if err != nil {
			m.err = fmt.Errorf("write to host: %w", err)
			return
		}
		b = b[n:]
	}
	m.markQuiet()
}

// markQuiet notes that the host has just been given something to react to
// (or has just spoken), for Config.HostTime.
func (m *module) markQuiet() {
	if m.clk.virtual && m.cfg.HostTime {
		m.quietV, m.quietR = m.clk.now(), time.Now()
	}
}

// chargeHost moves the virtual clock over the host's silence before input
// that arrives now (Config.HostTime): a silence shorter than VirtualIdle is
// computation, modelled as instant; a longer one is the host waiting, and
// counts in full from the last thing it had to react to.
func (m *module) chargeHost() {
	if !m.clk.virtual || !m.cfg.HostTime || m.quietR.IsZero() {
		return
	}
	if silence := time.Since(m.quietR); silence >= m.cfg.VirtualIdle {
		m.wait(m.quietV + silence)
	}
}

// urc sends one framed unsolicited line.
func (m *module) urc(text string) { m.write(frame(text)) }

func frame(text string) []byte { return []byte("\r\n" + text + "\r\n") }
