package main

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/urfave/cli/v2"

	"github.com/nbiot-uploader/uploader/queue"
)

func quarantineCommand(e *env) *cli.Command {
	listFlags := concat(commonFlags(), queueFlags(), []cli.Flag{
		&cli.BoolFlag{Name: "json", Usage: "print JSON instead of text"},
	})
	allFlags := func(verb string) []cli.Flag {
		return concat(commonFlags(), queueFlags(), []cli.Flag{
			&cli.BoolFlag{Name: "all", Usage: verb + " every quarantined record"},
		})
	}
	cmd := &cli.Command{
		Name:  "quarantine",
		Usage: "records the broker refused (or could never take): list, retry or drop them",
		Description: "A record the broker refuses (MQTT 5 reason >= 0x80, e.g. 0x87 not authorized), one larger than the\n" +
			"broker's Maximum Packet Size, or one the broker disconnects over is moved out of the queue into the\n" +
			"quarantine in the same file, with the reason and the time, so the records behind it go on.",
		Subcommands: []*cli.Command{
			command("list", "list quarantined records with their reasons", "", listFlags, func(c *cli.Context) error {
				return runQuarantineList(c, e)
			}),
			command("retry", "put quarantined records back into the queue (same seq) for the next window", "SEQ... | --all", allFlags("retry"),
				func(c *cli.Context) error { return runQuarantineChange(c, e, "retry") }),
			command("drop", "delete quarantined records for good", "SEQ... | --all", allFlags("drop"),
				func(c *cli.Context) error { return runQuarantineChange(c, e, "drop") }),
		},
	}
	return cmd
}

// quarantinedJSON is one record of `quarantine list --json`; field names
// are stable. The payload is "payload" when it is UTF-8 text and
// "payload_base64" otherwise, as `enqueue --ndjson` reads them.
type quarantinedJSON struct {
	Seq           uint64     `json:"seq"`
	Topic         string     `json:"topic"`
	QoS           byte       `json:"qos"`
	Retain        bool       `json:"retain"`
	Payload       *string    `json:"payload,omitempty"`
	PayloadBase64 *string    `json:"payload_base64,omitempty"`
	PayloadBytes  int        `json:"payload_bytes"`
	EnqueuedAt    time.Time  `json:"enqueued_at"`
	ExpiresAt     *time.Time `json:"expires_at,omitempty"`
	QuarantinedAt time.Time  `json:"quarantined_at"`
	Reason        string     `json:"reason"`
}

// quarantinePage bounds how many records one queue call returns.
const quarantinePage = 256

func runQuarantineList(c *cli.Context, e *env) error {
	if c.NArg() > 0 {
		return usagef("quarantine list takes no arguments, got %q", c.Args().First())
	}
	_, q, err := loggedQueue(c, e)
	if err != nil {
		return err
	}
	defer q.Close()
	var all []quarantinedJSON
	for after := uint64(0); ; {
		page, err := q.Quarantined(after, quarantinePage)
		if err != nil {
			return err
		}
		for _, r := range page {
			all = append(all, toQuarantinedJSON(r))
			after = r.Seq
		}
		if len(page) < quarantinePage {
			break
		}
	}
	if c.Bool("json") {
		if all == nil {
			all = []quarantinedJSON{}
		}
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(all)
	}
	printQuarantine(e.stdout, all)
	return nil
}

func toQuarantinedJSON(r queue.QuarantinedRecord) quarantinedJSON {
	j := quarantinedJSON{Seq: r.Seq, Topic: r.Topic, QoS: r.QoS, Retain: r.Retain, PayloadBytes: len(r.Payload),
		EnqueuedAt: r.EnqueuedAt, QuarantinedAt: r.QuarantinedAt, Reason: r.Reason}
	if utf8.Valid(r.Payload) {
		p := string(r.Payload)
		j.Payload = &p
	} else {
		p := base64.StdEncoding.EncodeToString(r.Payload)
		j.PayloadBase64 = &p
	}
	if !r.ExpiresAt.IsZero() {
		j.ExpiresAt = &r.ExpiresAt
	}
	return j
}

func printQuarantine(w io.Writer, recs []quarantinedJSON) {
	if len(recs) == 0 {
		fmt.Fprintln(w, "quarantine is empty")
		return
	}
	for _, r := range recs {
		fmt.Fprintf(w, "seq %d  %s  qos %d  %d bytes  quarantined %s\n  reason: %s\n",
			r.Seq, r.Topic, r.QoS, r.PayloadBytes, r.QuarantinedAt.Format(time.RFC3339), r.Reason)
	}
	fmt.Fprintf(w, "%d quarantined; 'uploader quarantine retry SEQ|--all' sends them again, 'uploader quarantine drop SEQ|--all' deletes them\n", len(recs))
}

// quarantineArgs reads SEQ... or --all; nil seqs with all set means every record.
func quarantineArgs(c *cli.Context, verb string) (seqs []uint64, all bool, err error) {
	all = c.Bool("all")
	args := c.Args().Slice()
	switch {
	case all && len(args) > 0:
		return nil, false, usagef("quarantine %s: give SEQ or --all, not both", verb)
	case !all && len(args) == 0:
		return nil, false, usagef("quarantine %s: give the SEQ of a quarantined record (see 'uploader quarantine list') or --all", verb)
	}
	for _, a := range args {
		seq, perr := strconv.ParseUint(a, 10, 64)
		if perr != nil || seq == 0 {
			return nil, false, usagef("quarantine %s: %q is not a sequence number (a positive integer)", verb, a)
		}
		seqs = append(seqs, seq)
	}
	return seqs, all, nil
}

func runQuarantineChange(c *cli.Context, e *env, verb string) error {
	seqs, all, err := quarantineArgs(c, verb)
	if err != nil {
		return err
	}
	_, q, err := loggedQueue(c, e)
	if err != nil {
		return err
	}
	defer q.Close()
	var n int
	switch {
	case verb == "retry" && all:
		n, err = q.RetryAllQuarantined()
	case verb == "retry":
		n, err = q.RetryQuarantined(seqs...)
	case all:
		n, err = q.DropAllQuarantined()
	default:
		n, err = q.DropQuarantined(seqs...)
	}
	switch {
	case errors.Is(err, queue.ErrNotFound):
		return fmt.Errorf("quarantine %s: %s: nothing changed", verb, notFoundDetail(err))
	case errors.Is(err, queue.ErrFull):
		return fmt.Errorf("quarantine %s: %w: nothing changed (raise --max-records/--max-bytes or wait for a window to drain the queue)", verb, err)
	case err != nil:
		return fmt.Errorf("quarantine %s: %w", verb, err)
	}
	switch verb {
	case "retry":
		fmt.Fprintf(e.stdout, "%d record(s) back in the queue for the next window\n", n)
	default:
		fmt.Fprintf(e.stdout, "%d quarantined record(s) dropped\n", n)
	}
	return nil
}

// notFoundDetail is the part of a queue ErrNotFound that names the record
// ("seq 42 is not quarantined"), without the file path around it.
func notFoundDetail(err error) string {
	msg := err.Error()
	if i := strings.Index(msg, queue.ErrNotFound.Error()+": "); i >= 0 {
		return msg[i+len(queue.ErrNotFound.Error())+2:]
	}
	return msg
}
