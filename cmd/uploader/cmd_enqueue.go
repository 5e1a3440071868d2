package main

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/nbiot-uploader/uploader/codec"
	"github.com/nbiot-uploader/uploader/queue"
)

// maxLineBytes bounds one stdin line in --lines/--ndjson mode so a runaway
// producer cannot exhaust a small board's memory.
const maxLineBytes = 1 << 20

func enqueueCommand(e *env) *cli.Command {
	flags := concat(commonFlags(), queueFlags(), enqueueOnlyFlags())
	cmd := command("enqueue", "store one or more readings durably in the queue", "[PAYLOAD | -]", flags, func(c *cli.Context) error {
		return runEnqueue(c, e)
	})
	cmd.Description = "Exits 0 only once every record of the call is on disk (fsync'd), all in one transaction.\n" +
		"Bad input is rejected before anything is written (exit 2)."
	return cmd
}

func enqueueOnlyFlags() []cli.Flag {
	topic := &cli.StringFlag{Name: "topic", Aliases: []string{"t"}, Usage: "MQTT topic of the reading(s)", EnvVars: envName("topic")}
	return []cli.Flag{
		topic,
		intFlag("qos", 1, "MQTT QoS 0, 1 or 2 (QoS 0 records are deleted only after a PINGRESP proves delivery)"),
		boolFlag("retain", "set the MQTT retain flag"),
		durFlag("ttl", 0, "drop the reading if it is not sent within this time (0 = never)"),
		boolFlag("lines", "read stdin and make one record per line"),
		boolFlag("ndjson", `read stdin as one JSON object per line: {"topic","payload" or "payload_base64","qos","retain","ttl"}`),
		int64Flag("max-payload", 256*1024, "largest accepted payload in bytes"),
	}
}

func runEnqueue(c *cli.Context, e *env) error {
	recs, err := parseEnqueueInput(c, e.stdin)
	if err != nil {
		return err
	}
	log, err := newLogger(e.stderr, c.String("log-level"))
	if err != nil {
		return err
	}
	q, err := openQueue(c, log)
	if err != nil {
		return err
	}
	defer q.Close()
	if _, err := q.Enqueue(recs...); err != nil {
		return fmt.Errorf("enqueue %d record(s): %w", len(recs), err)
	}
	return nil
}

// parseEnqueueInput reads and validates everything before the queue is
// touched, so bad input leaves the queue unchanged.
func parseEnqueueInput(c *cli.Context, stdin io.Reader) ([]queue.Record, error) {
	lines, ndjson := c.Bool("lines"), c.Bool("ndjson")
	if lines && ndjson {
		return nil, usagef("--lines and --ndjson exclude each other")
	}
	maxPayload := c.Int64("max-payload")
	if maxPayload <= 0 {
		return nil, usagef("--max-payload must be positive")
	}
	defaults := queue.Record{Topic: c.String("topic"), Retain: c.Bool("retain")}
	qos := c.Int("qos")
	if qos < 0 || qos > 2 {
		return nil, usagef("--qos %d: use 0, 1 or 2", qos)
	}
	defaults.QoS = byte(qos)
	ttl := c.Duration("ttl")
	if ttl < 0 {
		return nil, usagef("--ttl %s is negative", ttl)
	}
	now := time.Now()
	withTTL := func(r queue.Record, ttl time.Duration) queue.Record {
		if ttl > 0 {
			r.ExpiresAt = now.Add(ttl)
		}
		return r
	}
	check := func(where string, r queue.Record) error {
		if err := codec.ValidateTopicName(r.Topic); err != nil {
			return usagef("%stopic %q: %v", where, truncate(r.Topic, 60), err)
		}
		if int64(len(r.Payload)) > maxPayload {
			return usagef("%spayload of %d bytes is over --max-payload %d", where, len(r.Payload), maxPayload)
		}
		return nil
	}

	if ndjson {
		if c.NArg() > 0 {
			return nil, usagef("--ndjson reads stdin; do not give a PAYLOAD argument")
		}
		return readNDJSON(stdin, defaults, ttl, withTTL, check)
	}
	if defaults.Topic == "" {
		return nil, usagef("--topic is required")
	}
	if err := check("", defaults); err != nil {
		return nil, err
	}
	if lines {
		if c.NArg() > 0 {
			return nil, usagef("--lines reads stdin; do not give a PAYLOAD argument")
		}
		var recs []queue.Record
		err := scanLines(stdin, func(n int, line []byte) error {
			r := defaults
			r.Payload = append([]byte(nil), line...)
			if err := check(fmt.Sprintf("line %d: ", n), r); err != nil {
				return err
			}
			recs = append(recs, withTTL(r, ttl))
			return nil
		})
		if err != nil {
			return nil, err
		}
		if len(recs) == 0 {
			return nil, usagef("--lines: stdin held no lines")
		}
		return recs, nil
	}
	if c.NArg() > 1 {
		return nil, usagef("give one PAYLOAD argument (quote it), or - to read stdin; got %d", c.NArg())
	}
	r := defaults
	switch arg := c.Args().First(); {
	case c.NArg() == 0 || arg == "-":
		b, err := io.ReadAll(io.LimitReader(stdin, maxPayload+1))
		if err != nil {
			return nil, fmt.Errorf("read payload from stdin: %w", err)
		}
		r.Payload = b
	default:
		r.Payload = []byte(arg)
	}
	if err := check("", r); err != nil {
		return nil, err
	}
	return []queue.Record{withTTL(r, ttl)}, nil
}

func scanLines(r io.Reader, fn func(n int, line []byte) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), maxLineBytes)
	n := 0
	for sc.Scan() {
		n++
		line := bytes.TrimRight(sc.Bytes(), "\r")
		if len(line) == 0 {
			continue
		}
		if err := fn(n, line); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return usagef("line %d: longer than %d bytes", n+1, maxLineBytes)
		}
		return fmt.Errorf("read stdin: %w", err)
	}
	return nil
}

// ndjsonRecord is one --ndjson line. Payload is text; payload_base64 carries
// binary. ttl is a Go duration ("15m") or a number of seconds.
type ndjsonRecord struct {
	Topic         *string         `json:"topic"`
	Payload       *string         `json:"payload"`
	PayloadBase64 *string         `json:"payload_base64"`
	QoS           *int            `json:"qos"`
	Retain        *bool           `json:"retain"`
	TTL           json.RawMessage `json:"ttl"`
}

func readNDJSON(stdin io.Reader, defaults queue.Record, defTTL time.Duration,
	withTTL func(queue.Record, time.Duration) queue.Record, check func(string, queue.Record) error) ([]queue.Record, error) {
	var recs []queue.Record
	err := scanLines(stdin, func(n int, line []byte) error {
		where := fmt.Sprintf("line %d: ", n)
		var in ndjsonRecord
		dec := json.NewDecoder(bytes.NewReader(line))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&in); err != nil {
			return usagef("%sbad JSON: %v", where, err)
		}
		if dec.More() {
			return usagef("%sbad JSON: more than one value on the line", where)
		}
		r := defaults
		if in.Topic != nil {
			r.Topic = *in.Topic
		}
		switch {
		case in.Payload != nil && in.PayloadBase64 != nil:
			return usagef("%sgive payload or payload_base64, not both", where)
		case in.Payload != nil:
			r.Payload = []byte(*in.Payload)
		case in.PayloadBase64 != nil:
			b, err := base64.StdEncoding.DecodeString(*in.PayloadBase64)
			if err != nil {
				return usagef("%spayload_base64: %v", where, err)
			}
			r.Payload = b
		default:
			return usagef("%sno payload or payload_base64", where)
		}
		if in.QoS != nil {
			if *in.QoS < 0 || *in.QoS > 2 {
				return usagef("%sqos %d: use 0, 1 or 2", where, *in.QoS)
			}
			r.QoS = byte(*in.QoS)
		}
		if in.Retain != nil {
			r.Retain = *in.Retain
		}
		ttl := defTTL
		if len(in.TTL) > 0 && string(in.TTL) != "null" {
			d, err := parseTTL(in.TTL)
			if err != nil {
				return usagef("%sttl: %v", where, err)
			}
			ttl = d
		}
		if err := check(where, r); err != nil {
			return err
		}
		recs = append(recs, withTTL(r, ttl))
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(recs) == 0 {
		return nil, usagef("--ndjson: stdin held no records")
	}
	return recs, nil
}

func parseTTL(raw json.RawMessage) (time.Duration, error) {
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		d, err := time.ParseDuration(s)
		if err != nil {
			return 0, err
		}
		if d < 0 {
			return 0, fmt.Errorf("%s is negative", s)
		}
		return d, nil
	}
	var secs float64
	if err := json.Unmarshal(raw, &secs); err != nil {
		return 0, fmt.Errorf("want a duration like \"15m\" or a number of seconds, got %s", raw)
	}
	if secs < 0 {
		return 0, fmt.Errorf("%s is negative", strconv.FormatFloat(secs, 'f', -1, 64))
	}
	return time.Duration(secs * float64(time.Second)), nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
