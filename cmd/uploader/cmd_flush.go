package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"

	"github.com/nbiot-uploader/uploader/queue"
	"github.com/nbiot-uploader/uploader/uplink"
	"github.com/nbiot-uploader/uploader/uplink/fault"
)

func flushCommand(e *env) *cli.Command {
	flags := concat(commonFlags(), queueFlags(), windowFlags())
	cmd := command("flush", "run one window now and print its summary", "", flags, func(c *cli.Context) error {
		return runFlush(c, e)
	})
	cmd.Description = "Exits 1 when the window failed; whatever was not acknowledged stays queued."
	return cmd
}

// windowSetup is what flush and run share: the logger, the validated
// window configuration and the queue. The caller closes the queue.
func windowSetup(c *cli.Context, e *env) (*slog.Logger, uplink.Config, *queue.Queue, error) {
	log, err := newLogger(e.stderr, c.String("log-level"))
	if err != nil {
		return nil, uplink.Config{}, nil, err
	}
	cfg, err := windowConfig(c)
	if err != nil {
		return nil, cfg, nil, err
	}
	q, err := openQueue(c, log)
	if err != nil {
		return nil, cfg, nil, err
	}
	cfg.Logger = log
	if c.Bool("trace") {
		cfg.Trace = log
	}
	return log, cfg, q, nil
}

func runFlush(c *cli.Context, e *env) error {
	log, cfg, q, err := windowSetup(c, e)
	if err != nil {
		return err
	}
	defer q.Close()
	cfg.Holder = "uploader flush"
	var prog *progressLine
	if isTerminal(e.stderr) {
		prog = &progressLine{w: e.stderr}
		cfg.Progress = prog.update
	} else {
		cfg.Progress = logProgress(log)
	}
	sum, werr := uplink.RunWindow(c.Context, cfg, q)
	if prog != nil {
		prog.done()
	}
	printSummary(e.stdout, sum)
	if werr != nil {
		return fmt.Errorf("window failed: %w", werr)
	}
	return nil
}

func printSummary(w io.Writer, s uplink.Summary) {
	fmt.Fprintf(w, "outcome:        %s\n", s.Outcome)
	if s.Outcome == uplink.OutcomeSkipped {
		fmt.Fprintf(w, "reason:         %s\n", s.Error)
		return
	}
	if s.Error != "" {
		fmt.Fprintf(w, "error:          %s\n", s.Error)
	}
	if s.Class != "" {
		fmt.Fprintf(w, "next:           %s\n", classAdvice(s.Class))
	}
	fmt.Fprintf(w, "records:        %d acknowledged, %d sent (%d queued when the window started", s.Acked, s.Sent, s.Queued)
	if s.Skipped > 0 {
		fmt.Fprintf(w, ", %d too large for the broker", s.Skipped)
	}
	fmt.Fprintln(w, ")")
	if s.Refused > 0 || s.Quarantined > 0 {
		fmt.Fprintf(w, "refused:        %d by the broker, %d quarantined (uploader quarantine list)\n", s.Refused, s.Quarantined)
	}
	fmt.Fprintf(w, "mqtt bytes:     %d out, %d in, %d chunks\n", s.MQTTBytesOut, s.MQTTBytesIn, s.Chunks)
	if s.TLS != "" {
		fmt.Fprintf(w, "tls:            %s handshake\n", s.TLS)
	}
	printDownlink(w, s)
	if s.Transport == uplink.TransportModem {
		fmt.Fprintf(w, "radio on:       %.1f s (registration %.1f s), CSQ %s\n", s.RadioOnSeconds, s.RegistrationSeconds, csqText(s.CSQ))
	}
	fmt.Fprintf(w, "duration:       %.1f s\n", s.DurationSeconds)
}

func csqText(csq int) string {
	if csq == 99 || csq < 0 {
		return "unknown"
	}
	return fmt.Sprintf("%d (%d dBm)", csq, -113+2*csq)
}

// progressLine redraws one line on a terminal.
type progressLine struct {
	mu   sync.Mutex
	w    io.Writer
	last time.Time
	seen bool
}

func (p *progressLine) update(pr uplink.Progress) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if time.Since(p.last) < 100*time.Millisecond {
		return
	}
	p.last = time.Now()
	p.seen = true
	rate := 0.0
	if s := pr.Elapsed.Seconds(); s > 0 {
		rate = float64(pr.BytesOut) / s
	}
	fmt.Fprintf(p.w, "\r%d of %d records acknowledged, %d sent, %.0f bytes/s   ", pr.Acked, pr.Queued, pr.Sent, rate)
}

func (p *progressLine) done() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.seen {
		fmt.Fprintln(p.w)
	}
}

// logProgress logs at most one progress line every 5 seconds.
func logProgress(log *slog.Logger) func(uplink.Progress) {
	var mu sync.Mutex
	var last time.Time
	return func(pr uplink.Progress) {
		mu.Lock()
		defer mu.Unlock()
		if time.Since(last) < 5*time.Second {
			return
		}
		last = time.Now()
		log.Info("progress", "acked", pr.Acked, "queued", pr.Queued, "sent", pr.Sent, "mqtt_bytes", pr.BytesOut)
	}
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// classAdvice is the operator's next step after a failed window of the
// given class (uplink.Summary.Class).
func classAdvice(class string) string {
	for _, c := range []fault.Class{fault.Retry, fault.BackOff, fault.Quarantine, fault.Stop} {
		if c.String() == class {
			return c.Advice()
		}
	}
	return class
}
