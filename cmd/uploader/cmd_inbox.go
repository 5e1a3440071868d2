package main

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/urfave/cli/v2"

	"github.com/nbiot-uploader/uploader/queue"
	"github.com/nbiot-uploader/uploader/uplink"
)

// defaultInboxMaxBytes bounds the inbox: 4 MiB of topics and payloads.
const defaultInboxMaxBytes = 4 << 20

// downlinkFlags configure the downlink inbox (README, "Talking to a site").
func downlinkFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringSliceFlag{Name: "subscribe", EnvVars: envName("subscribe"),
			Usage: "FILTER[:QOS] (QoS 0, 1 or 2, default 1) to collect into the inbox; repeatable. Makes the MQTT session persistent, so messages sent while the site sleeps arrive in the next window; windows then run even with nothing queued"},
		durFlag("session-expiry", 0, "MQTT 5 session expiry with --subscribe: how long the broker keeps the session and its messages (default: 3 x the --schedule interval, at least 24h; 7 days without --schedule)"),
		durFlag("downlink-wait", uplink.DefaultDownlinkWait, "with --subscribe: longest wait for deliveries after SUBACK (the wait normally ends after one round trip)"),
		int64Flag("inbox-max-bytes", defaultInboxMaxBytes, "bound of the inbox's topic+payload bytes; when full, new messages are left with the broker (0 = no bound)"),
		strFlag("inbox-hook", "", "shell command run after each window (radio off) once per inbox message: payload on stdin, UPLOADER_INBOX_TOPIC, _ID, _QOS, _RETAIN, _RECEIVED_AT, _ATTEMPT in the environment; exit 0 removes the message"),
		intFlag("inbox-hook-attempts", uplink.DefaultInboxHookAttempts, "failed hook runs per message (one per window) before it is left for 'uploader inbox ack'"),
		durFlag("inbox-hook-timeout", uplink.DefaultInboxHookTimeout, "longest run of the inbox hook for one message; it is then killed and counted as failed"),
	}
}

// downlinkConfig fills the downlink part of cfg from downlinkFlags.
func downlinkConfig(c *cli.Context, cfg *uplink.Config) error {
	for _, s := range c.StringSlice("subscribe") {
		sub, err := uplink.ParseSubscription(s)
		if err != nil {
			return usageError{err}
		}
		cfg.Subscriptions = append(cfg.Subscriptions, sub)
	}
	cfg.SessionExpiry = c.Duration("session-expiry")
	if !c.IsSet("session-expiry") {
		cfg.SessionExpiry = 7 * 24 * time.Hour
		if sched, err := schedule(c); err == nil && sched != nil {
			cfg.SessionExpiry = max(24*time.Hour, 3*sched.Interval())
		}
	}
	cfg.DownlinkWait = c.Duration("downlink-wait")
	cfg.InboxMaxBytes = c.Int64("inbox-max-bytes")
	cfg.InboxHook = c.String("inbox-hook")
	cfg.InboxHookAttempts = c.Int("inbox-hook-attempts")
	cfg.InboxHookTimeout = c.Duration("inbox-hook-timeout")
	if cfg.InboxHookAttempts < 1 {
		return usagef("--inbox-hook-attempts %d must be at least 1", cfg.InboxHookAttempts)
	}
	if cfg.InboxHookTimeout <= 0 {
		return usagef("--inbox-hook-timeout must be positive")
	}
	return nil
}

func inboxCommand(e *env) *cli.Command {
	listFlags := concat(commonFlags(), []cli.Flag{
		&cli.BoolFlag{Name: "json", Usage: "print JSON instead of text"},
		durFlag("queue-busy-timeout", 30*time.Second, "how long to wait for another process holding the queue before failing"),
	})
	showFlags := concat(commonFlags(), []cli.Flag{
		durFlag("queue-busy-timeout", 30*time.Second, "how long to wait for another process holding the queue before failing"),
	})
	ackFlags := concat(showFlags, []cli.Flag{
		&cli.BoolFlag{Name: "all", Usage: "remove every message in the inbox"},
	})
	return &cli.Command{
		Name:  "inbox",
		Usage: "messages the broker delivered to this site (--subscribe): list, show or acknowledge them",
		Description: "Every message the broker delivers on a --subscribe filter is stored in the inbox, in the queue file,\n" +
			"before it is acknowledged. It stays until --inbox-hook handled it (exit 0) or 'uploader inbox ack' removes it.",
		Subcommands: []*cli.Command{
			command("list", "list the messages in the inbox", "", listFlags, func(c *cli.Context) error { return runInboxList(c, e) }),
			command("show", "print one message's payload, as received, on stdout", "ID", showFlags, func(c *cli.Context) error { return runInboxShow(c, e) }),
			command("ack", "remove handled messages from the inbox", "ID... | --all", ackFlags, func(c *cli.Context) error { return runInboxAck(c, e) }),
		},
	}
}

// inboxJSON is one message of `inbox list --json`; field names are stable.
// The payload is "payload" when it is UTF-8 text and "payload_base64"
// otherwise.
type inboxJSON struct {
	ID            uint64    `json:"id"`
	Topic         string    `json:"topic"`
	QoS           byte      `json:"qos"`
	Retain        bool      `json:"retain"`
	Payload       *string   `json:"payload,omitempty"`
	PayloadBase64 *string   `json:"payload_base64,omitempty"`
	PayloadBytes  int       `json:"payload_bytes"`
	ReceivedAt    time.Time `json:"received_at"`
	HookAttempts  int       `json:"hook_attempts"`
	LastError     string    `json:"last_error,omitempty"`
}

func openInboxQueue(c *cli.Context, e *env) (*queue.Queue, error) {
	log, err := newLogger(e.stderr, c.String("log-level"))
	if err != nil {
		return nil, err
	}
	if c.Duration("queue-busy-timeout") <= 0 {
		return nil, usagef("--queue-busy-timeout must be positive")
	}
	return queue.Open(c.String("db"), &queue.Options{Logger: log, BusyTimeout: c.Duration("queue-busy-timeout"), NoCreate: true})
}

func runInboxList(c *cli.Context, e *env) error {
	if c.NArg() > 0 {
		return usagef("inbox list takes no arguments, got %q", c.Args().First())
	}
	q, err := openInboxQueue(c, e)
	if err != nil {
		return err
	}
	defer q.Close()
	all := []inboxJSON{}
	for after := uint64(0); ; {
		page, err := q.Inbox(after, quarantinePage)
		if err != nil {
			return err
		}
		for _, m := range page {
			all = append(all, toInboxJSON(m))
			after = m.ID
		}
		if len(page) < quarantinePage {
			break
		}
	}
	if c.Bool("json") {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(all)
	}
	st, err := q.InboxStats()
	if err != nil {
		return err
	}
	printInbox(e.stdout, all, st)
	return nil
}

func toInboxJSON(m queue.InboxMessage) inboxJSON {
	j := inboxJSON{ID: m.ID, Topic: m.Topic, QoS: m.QoS, Retain: m.Retain, PayloadBytes: len(m.Payload),
		ReceivedAt: m.ReceivedAt.UTC(), HookAttempts: m.Attempts, LastError: m.LastError}
	if utf8.Valid(m.Payload) {
		p := string(m.Payload)
		j.Payload = &p
	} else {
		p := base64.StdEncoding.EncodeToString(m.Payload)
		j.PayloadBase64 = &p
	}
	return j
}

func printInbox(w io.Writer, msgs []inboxJSON, st queue.InboxStats) {
	if len(msgs) == 0 {
		fmt.Fprintf(w, "inbox is empty (%d received, %d refused while full, %d failed hook runs, ever)\n", st.Received, st.Refused, st.HookFailures)
		return
	}
	for _, m := range msgs {
		fmt.Fprintf(w, "id %d  %s  qos %d  %d bytes  received %s", m.ID, m.Topic, m.QoS, m.PayloadBytes, m.ReceivedAt.Format(time.RFC3339))
		if m.Retain {
			fmt.Fprint(w, "  retained")
		}
		fmt.Fprintln(w)
		if m.HookAttempts > 0 {
			fmt.Fprintf(w, "  hook failed %d time(s): %s\n", m.HookAttempts, m.LastError)
		}
	}
	fmt.Fprintf(w, "%d message(s), %d bytes (%d received, %d refused while full, %d failed hook runs, ever); 'uploader inbox show ID' prints one, 'uploader inbox ack ID|--all' removes them\n",
		len(msgs), st.Bytes, st.Received, st.Refused, st.HookFailures)
}

func parseInboxID(s string) (uint64, error) {
	id, err := strconv.ParseUint(s, 10, 64)
	if err != nil || id == 0 {
		return 0, usagef("%q is not an inbox message id (a positive integer; see 'uploader inbox list')", s)
	}
	return id, nil
}

func runInboxShow(c *cli.Context, e *env) error {
	if c.NArg() != 1 {
		return usagef("inbox show takes one message id (see 'uploader inbox list')")
	}
	id, err := parseInboxID(c.Args().First())
	if err != nil {
		return err
	}
	q, err := openInboxQueue(c, e)
	if err != nil {
		return err
	}
	defer q.Close()
	m, err := q.InboxGet(id)
	if errors.Is(err, queue.ErrNotFound) {
		return fmt.Errorf("inbox show: message %d is not in the inbox", id)
	}
	if err != nil {
		return err
	}
	_, err = e.stdout.Write(m.Payload)
	return err
}

func runInboxAck(c *cli.Context, e *env) error {
	all := c.Bool("all")
	args := c.Args().Slice()
	switch {
	case all && len(args) > 0:
		return usagef("inbox ack: give ID or --all, not both")
	case !all && len(args) == 0:
		return usagef("inbox ack: give the ID of a message (see 'uploader inbox list') or --all")
	}
	var ids []uint64
	for _, a := range args {
		id, err := parseInboxID(a)
		if err != nil {
			return err
		}
		ids = append(ids, id)
	}
	q, err := openInboxQueue(c, e)
	if err != nil {
		return err
	}
	defer q.Close()
	var n int
	if all {
		n, err = q.AckAllInbox()
	} else {
		n, err = q.AckInbox(ids...)
	}
	switch {
	case errors.Is(err, queue.ErrNotFound):
		return fmt.Errorf("inbox ack: %s: nothing changed", notFoundDetail(err))
	case err != nil:
		return fmt.Errorf("inbox ack: %w", err)
	}
	fmt.Fprintf(e.stdout, "%d message(s) removed from the inbox\n", n)
	return nil
}

// printDownlink adds the window's downlink to the flush summary.
func printDownlink(w io.Writer, s uplink.Summary) {
	if s.DownlinkMessages > 0 || s.DownlinkRefused > 0 || s.DownlinkDuplicates > 0 {
		fmt.Fprintf(w, "downlink:       %d downlink messages (%d bytes) into the inbox", s.DownlinkMessages, s.DownlinkBytes)
		if s.DownlinkDuplicates > 0 {
			fmt.Fprintf(w, ", %d redeliveries recognised", s.DownlinkDuplicates)
		}
		if s.DownlinkRefused > 0 {
			fmt.Fprintf(w, ", %d left with the broker (inbox full)", s.DownlinkRefused)
		}
		fmt.Fprintln(w)
	}
	if s.HookOK > 0 || s.HookFailed > 0 {
		fmt.Fprintf(w, "inbox hook:     %d handled, %d failed (uploader inbox list)\n", s.HookOK, s.HookFailed)
	}
}
