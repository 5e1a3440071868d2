package modemsim

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
)

// Sim is a running simulated SIM7000. Its methods are safe for concurrent
// use.
type Sim struct {
	m       *module
	path    string
	cancel  context.CancelFunc
	closers []io.Closer
	loopEnd chan struct{} // closed when the module goroutine returns
	readEnd chan struct{} // closed when the input goroutine returns; nil if not awaited

	closeOnce sync.Once
	closeErr  error
}

// Start serves a simulated module on a new pseudo-terminal until Close. The
// host opens Path with go.bug.st/serial like a real serial port; it may
// close and reopen it between windows.
func Start(cfg Config) (*Sim, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	master, slave, path, err := openPTY()
	if err != nil {
		return nil, fmt.Errorf("start modem simulator: %w", err)
	}
	s := serve(context.Background(), master, cfg, master, slave)
	s.path = path
	return s, nil
}

// Serve runs the module over rw, one end of a byte stream such as
// net.Pipe, without a pseudo-terminal. It returns at once; the module runs
// until ctx ends, Close is called or reading rw fails. Close closes rw when
// it is an io.Closer; otherwise Close cannot interrupt a pending Read and
// does not wait for it.
func Serve(ctx context.Context, rw io.ReadWriter, cfg Config) (*Sim, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	var closers []io.Closer
	if c, ok := rw.(io.Closer); ok {
		closers = append(closers, c)
	}
	return serve(ctx, rw, cfg, closers...), nil
}

func serve(ctx context.Context, rw io.ReadWriter, cfg Config, closers ...io.Closer) *Sim {
	ctx, cancel := context.WithCancel(ctx)
	s := &Sim{
		m:       newModule(ctx, cfg.withDefaults(), rw),
		cancel:  cancel,
		closers: closers,
		loopEnd: make(chan struct{}),
	}
	go func() {
		defer close(s.loopEnd)
		defer cancel()
		s.m.loop()
	}()
	readEnd := make(chan struct{})
	if len(closers) > 0 {
		s.readEnd = readEnd
	}
	go func() {
		defer close(readEnd)
		defer cancel()
		buf := make([]byte, 4096)
		for {
			n, err := rw.Read(buf)
			if n > 0 {
				data := append([]byte(nil), buf[:n]...)
				if !s.m.post(func() { s.m.input(data) }) {
					return
				}
			}
			if err != nil {
				return
			}
		}
	}()
	return s
}

// Path is the pseudo-terminal device to open, e.g. /dev/pts/7; "" for a
// simulator made by Serve.
func (s *Sim) Path() string { return s.path }

// Done is closed when the module stops (Close, the context of Serve ended,
// or the byte stream failed).
func (s *Sim) Done() <-chan struct{} { return s.loopEnd }

// Close stops the module, closes the terminal or stream and every TCP
// connection, and ends the running radio and power periods in Accounting.
// It is safe to call more than once.
func (s *Sim) Close() error {
	s.closeOnce.Do(func() {
		s.cancel()
		var errs []error
		for _, c := range s.closers {
			if err := c.Close(); err != nil {
				errs = append(errs, fmt.Errorf("close modem simulator: %w", err))
			}
		}
		<-s.loopEnd
		// The module goroutine is gone; its state is ours now.
		s.m.dropLink()
		s.m.closeConns()
		s.m.wg.Wait()
		// A dial that completed while closing registered its connection late.
		s.m.closeConns()
		if s.readEnd != nil {
			<-s.readEnd
		}
		s.m.acct.radioSwitchedOff()
		s.m.acct.setPowered(false)
		s.closeErr = errors.Join(errs...)
	})
	return s.closeErr
}

// Accounting returns a snapshot of what the module has counted so far.
func (s *Sim) Accounting() Accounting { return s.m.acct.snapshot() }

// ResetAccounting zeroes the counters; running radio and power periods
// count again from now.
func (s *Sim) ResetAccounting() { s.m.acct.reset() }

// RadioOn reports whether the module is powered with CFUN=1.
func (s *Sim) RadioOn() bool { return s.m.radioFlag.Load() }

// PoweredOn reports whether the module has power (booting or running).
func (s *Sim) PoweredOn() bool { return s.m.poweredFlag.Load() }

// PowerOn does what a PWRKEY pulse or a supply switch does to a module that
// is off: it boots, stays silent for BootDelay, then prints its banner with
// echo on and CFUN=1. It does nothing to a module that is on.
func (s *Sim) PowerOn() {
	s.m.call(func() {
		if s.m.power == powerOff {
			s.m.boot()
		}
	})
}

// PowerOff cuts the power: no answer, no URC, link and volatile settings
// lost. It also ends a hang.
func (s *Sim) PowerOff() { s.m.call(s.m.powerDown) }

// SetFaults replaces the injected faults and restarts their counters. A
// registration that was blocked (NoRegistration, no signal) starts over
// with a fresh AttachDelay once the block is lifted.
func (s *Sim) SetFaults(f Faults) error {
	if err := f.validate(); err != nil {
		return err
	}
	s.m.call(func() { s.m.setFaults(f) })
	return nil
}
