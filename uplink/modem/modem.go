package modem

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// Modem is a SIM7000 on a serial port. One goroutine reads the port; AT
// commands are serialised, so a Modem may be used from several goroutines.
type Modem struct {
	port  io.ReadWriteCloser
	opts  Options
	log   *slog.Logger
	trace *tracer
	stats statsRecorder

	events *eventQueue
	// abortPayload asks the reader to drop a receive payload still being
	// collected: set when a new command takes the UART.
	abortPayload atomic.Bool
	// current is the command line awaiting its answer, for URC
	// classification in the reader.
	current atomic.Pointer[string]

	sem chan struct{} // capacity 1: held for one whole exchange
	// late is the final result an abandoned command still owes; only the
	// holder of sem touches it.
	late *lateAnswer
	// silent is the evidence of a module that stopped answering; only the
	// holder of sem touches it.
	silent silence
	// heard counts bytes read from the port and heardAt is when the last
	// were read (monotonic nanoseconds since born): the measure of silence.
	heard   atomic.Int64
	heardAt atomic.Int64
	born    time.Time
	writeCh chan writeRequest

	closeOnce  sync.Once
	closing    chan struct{}
	readerDone chan struct{}
	readerErr  error // set before readerDone is closed

	connMu    sync.Mutex
	localIP   string // from AT+CIFSR
	connOpen  bool   // between CONNECT OK and Conn.Close
	connErr   error  // fatal URC seen since Dial: ErrRemoteClosed, ErrPDPDeact, ErrRebooted
	rxPending bool   // "+CIPRXGET: 1" seen and not yet served
	// prepared is the AT+CSTT line of a PrepareBearer still valid ("" for
	// none; it holds the APN password: never logged). ipEpoch counts what
	// voids a preparation (see PrepareBearer).
	prepared string
	ipEpoch  uint64
	wake     chan struct{} // capacity 1: pokes a waiting Conn.Read
}

type writeRequest struct {
	b    []byte
	done chan error
}

// New starts driving the module on port. The Modem owns the port from now
// on: Close closes it.
func New(port io.ReadWriteCloser, opts Options) *Modem {
	opts = opts.withDefaults()
	m := &Modem{
		port:       port,
		opts:       opts,
		log:        opts.Logger,
		trace:      newTracer(opts.Trace, opts.Secrets),
		events:     newEventQueue(),
		sem:        make(chan struct{}, 1),
		writeCh:    make(chan writeRequest),
		closing:    make(chan struct{}),
		readerDone: make(chan struct{}),
		wake:       make(chan struct{}, 1),
		silent:     silence{mark: -1},
		born:       time.Now(),
	}
	go m.readLoop()
	go m.writeLoop()
	return m
}

// Close stops the reader and closes the port. It is safe to call twice.
func (m *Modem) Close() error {
	var err error
	m.closeOnce.Do(func() {
		close(m.closing)
		if cerr := m.port.Close(); cerr != nil {
			err = fmt.Errorf("close serial port: %w", cerr)
		}
		// A port whose Read ignores Close must not hang the caller.
		select {
		case <-m.readerDone:
		case <-time.After(2 * time.Second):
			err = errors.Join(err, errors.New("serial reader did not stop"))
		}
	})
	return err
}

// Stats returns a snapshot of the UART counters.
func (m *Modem) Stats() Stats {
	s := m.stats.snapshot()
	s.DroppedEvents = m.events.droppedCount()
	return s
}
