package main

import (
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/nbiot-uploader/uploader/queue"
	"github.com/nbiot-uploader/uploader/uplink"
)

func statusCommand(e *env) *cli.Command {
	flags := concat(commonFlags(), queueFlags(), []cli.Flag{
		strFlag("client-id", defaultClientID(), "MQTT client id (shown; the default is derived from /etc/machine-id and the hostname)"),
		&cli.BoolFlag{Name: "json", Usage: "print JSON instead of text"},
	})
	cmd := command("status", "show the queue and the last window", "", flags, func(c *cli.Context) error {
		return runStatus(c, e)
	})
	cmd.Description = "Read-only: a --db that names no queue is an error (exit 1, \"no queue at PATH\") and nothing is created."
	return cmd
}

// statusReport is what `status --json` prints; field names are stable.
type statusReport struct {
	DB               string          `json:"db"`
	Depth            int64           `json:"depth"`
	Bytes            int64           `json:"bytes"`
	FileSize         int64           `json:"file_size"`
	OldestAgeSeconds *float64        `json:"oldest_age_seconds"`
	Oldest           *time.Time      `json:"oldest,omitempty"`
	Newest           *time.Time      `json:"newest,omitempty"`
	Dropped          uint64          `json:"dropped"`
	Expired          uint64          `json:"expired"`
	Quarantined      int64           `json:"quarantined"`
	Rejected         uint64          `json:"rejected"`
	LastSeq          uint64          `json:"last_seq"`
	LastWindow       *uplink.Summary `json:"last_window"`
	// NextWindow is the plan the daemon stored the last time it planned a
	// window; Daemon says whether a daemon still holds the queue.
	NextWindow *uplink.StoredPlan `json:"next_window,omitempty"`
	Daemon     daemonState        `json:"daemon"`
	ClientID   string             `json:"client_id"`
	// SkippedWindows counts windows that did not bring the radio up.
	SkippedWindows uplink.WindowSkips `json:"skipped_windows"`
	// Deferrals counts windows deferred on a poor link or supply.
	Deferrals uplink.Deferrals `json:"deferrals"`
	// Month is this calendar month's usage (UTC) of the windows that ran.
	Month uplink.Usage `json:"month"`
	// Inbox counts what the broker delivered to the site (--subscribe).
	Inbox inboxState `json:"inbox"`
	// Budget is the month against --data-budget, as the last window under
	// one decided (absent when no window ran with a budget).
	Budget *uplink.BudgetReport `json:"budget,omitempty"`
	// InterruptedSendUntil is set when a window died in the middle of a
	// PUBLISH larger than one chunk: the next one power-cycles the module
	// or waits until then (see uplink.ModemLock.MidPacketUntil).
	InterruptedSendUntil *time.Time `json:"interrupted_send_until,omitempty"`
}

// inboxState is the downlink inbox in status.
type inboxState struct {
	Messages     int64  `json:"messages"`
	Bytes        int64  `json:"bytes"`
	Received     uint64 `json:"received"`
	Duplicates   uint64 `json:"duplicates"`
	Refused      uint64 `json:"refused"`
	HookFailures uint64 `json:"hook_failures"`
}

// daemonState says whether `uploader run` holds the queue.
type daemonState struct {
	Running bool   `json:"running"`
	Holder  string `json:"holder,omitempty"`
}

func runStatus(c *cli.Context, e *env) error {
	log, err := newLogger(e.stderr, c.String("log-level"))
	if err != nil {
		return err
	}
	// Read-only: a mistyped --db must be an error, not a new empty queue
	// (and directory) that reports "0 records".
	opts, err := queueOptions(c, log)
	if err != nil {
		return err
	}
	opts.NoCreate = true
	q, err := queue.Open(c.String("db"), opts)
	if err != nil {
		return err
	}
	defer q.Close()
	st, err := q.Stats()
	if err != nil {
		return err
	}
	raw, err := q.WindowSummary()
	if err != nil {
		return err
	}
	last, err := uplink.ParseSummary(raw)
	if err != nil {
		return err
	}
	now := time.Now()
	r := statusReport{DB: q.Path(), Depth: st.Depth, Bytes: st.Bytes, FileSize: st.FileSize,
		Dropped: st.Dropped, Expired: st.Expired, Quarantined: st.Quarantined, Rejected: st.Rejected, LastSeq: st.LastSeq, LastWindow: last}
	if !st.Oldest.IsZero() {
		age := now.Sub(st.Oldest).Seconds()
		r.OldestAgeSeconds = &age
		r.Oldest, r.Newest = &st.Oldest, &st.Newest
	}
	r.ClientID = c.String("client-id")
	if r.NextWindow, err = uplink.ReadPlan(q); err != nil {
		log.Warn("could not read the daemon's plan", "err", err)
	}
	if r.Daemon.Holder, r.Daemon.Running, err = uplink.DaemonHolder(q.Path()); err != nil {
		log.Warn("could not check for a daemon", "err", err)
	}
	if r.SkippedWindows, err = uplink.ReadWindowSkips(q); err != nil {
		log.Warn("could not read the skipped windows", "err", err)
	}
	if r.Deferrals, err = uplink.ReadDeferrals(q); err != nil {
		log.Warn("could not read the deferrals", "err", err)
	}
	if r.Month, err = uplink.MonthUsage(q, now); err != nil {
		log.Warn("could not read the month's usage", "err", err)
	}
	if is, err := q.InboxStats(); err != nil {
		log.Warn("could not read the inbox", "err", err)
	} else {
		r.Inbox = inboxState(is)
	}
	if b, err := uplink.ReadBudget(q, now); err != nil {
		log.Warn("could not read the data budget", "err", err)
	} else if b.Last != nil {
		r.Budget = &b
	}
	if until, err := uplink.ReadMidPacketMark(modemLockPath(c)); err != nil {
		log.Warn("could not read the modem lock file", "err", err)
	} else if !until.IsZero() {
		r.InterruptedSendUntil = &until
	}
	if c.Bool("json") {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	}
	printStatus(e.stdout, r, now)
	return nil
}

func printStatus(w io.Writer, r statusReport, now time.Time) {
	fmt.Fprintf(w, "queue:          %s\n", r.DB)
	fmt.Fprintf(w, "depth:          %d records, %d bytes (file %d bytes)\n", r.Depth, r.Bytes, r.FileSize)
	if r.OldestAgeSeconds != nil {
		fmt.Fprintf(w, "oldest:         %s ago (%s)\n", describeDuration(time.Duration(*r.OldestAgeSeconds*float64(time.Second))), r.Oldest.Format(time.RFC3339))
	} else {
		fmt.Fprintf(w, "oldest:         -\n")
	}
	fmt.Fprintf(w, "dropped:        %d (queue limits)\n", r.Dropped)
	fmt.Fprintf(w, "expired:        %d (TTL)\n", r.Expired)
	fmt.Fprintf(w, "quarantined:    %d (refused by the broker; uploader quarantine list)\n", r.Quarantined)
	fmt.Fprintf(w, "rejected:       %d (refused by enqueue: queue full under reject-new, or over --max-bytes)\n", r.Rejected)
	if r.LastWindow == nil {
		fmt.Fprintf(w, "last window:    none yet\n")
	} else {
		lw := r.LastWindow
		fmt.Fprintf(w, "last window:    %s, %s ago: %d of %d acknowledged, %d MQTT bytes, radio on %.1f s, CSQ %s\n",
			lw.Outcome, describeDuration(now.Sub(lw.End)), lw.Acked, lw.Queued, lw.MQTTBytesOut, lw.RadioOnSeconds, csqText(lw.CSQ))
		if lw.Error != "" {
			fmt.Fprintf(w, "last error:     %s\n", lw.Error)
		}
	}
	fmt.Fprintf(w, "client id:      %s\n", r.ClientID)
	switch d, p := r.Daemon, r.NextWindow; {
	case d.Running && p != nil:
		kind := "regular slot"
		if p.Retry {
			kind = fmt.Sprintf("retry after %d failed windows", p.Failures)
		}
		fmt.Fprintf(w, "next window:    %s (in %s, %s), planned by the daemon (%s)\n", p.At.Format(time.RFC3339), describeDuration(p.At.Sub(now)), kind, d.Holder)
	case d.Running:
		fmt.Fprintf(w, "next window:    not planned yet; a daemon runs (%s)\n", d.Holder)
	case p != nil:
		fmt.Fprintf(w, "next window:    none: no daemon runs (the last one planned %s)\n", p.At.Format(time.RFC3339))
	default:
		fmt.Fprintf(w, "next window:    none: no daemon runs\n")
	}
	if in := r.Inbox; in.Received > 0 || in.Messages > 0 {
		fmt.Fprintf(w, "inbox:          %d messages waiting (%d bytes); %d received, %d duplicates, %d refused (full), %d hook failures\n",
			in.Messages, in.Bytes, in.Received, in.Duplicates, in.Refused, in.HookFailures)
	}
	if d := r.Deferrals; d.Total > 0 {
		fmt.Fprintf(w, "deferred:       %d windows (%d in a row now; last: %s)\n", d.Total, d.Streak, d.LastReason)
	}
	if m := r.Month; m.Windows > 0 {
		fmt.Fprintf(w, "this month:     %d windows, %d MQTT bytes up, %d down, about %d bytes on the air, radio on %.0f s\n",
			m.Windows, m.MQTTBytesOut, m.MQTTBytesIn, m.AirBytes, m.RadioOnSeconds)
	}
	if b := r.Budget; b != nil {
		fmt.Fprintf(w, "data budget:    %d of %d bytes used this month (even pace by now %d), forecast %d; %d windows deferred this month\n",
			b.Used, b.Budget, b.Pace, b.Forecast, b.Last.Deferred)
		fmt.Fprintf(w, "budget said:    %s at %s: %s\n", b.Last.Decision, b.Last.At.Format(time.RFC3339), b.Last.Reason)
	}
	if sk := r.SkippedWindows; sk.Busy+sk.Empty > 0 {
		fmt.Fprintf(w, "skipped:        %d windows (%d with nothing queued, %d while another held the queue or modem)\n", sk.Busy+sk.Empty, sk.Empty, sk.Busy)
	}
	if u := r.InterruptedSendUntil; u != nil {
		fmt.Fprintf(w, "interrupted:    a window died in the middle of a PUBLISH; the next one power-cycles the module or waits until %s\n", u.Format(time.RFC3339))
	}
}
