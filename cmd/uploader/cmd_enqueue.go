package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/urfave/cli/v2"

	"github.com/nbiot-uploader/uploader/codec"
	"github.com/nbiot-uploader/uploader/queue"
)

const (
	// maxLineBytes is the shortest line cap of --lines and --ndjson; a
	// larger --max-payload raises it (see lineCap).
	maxLineBytes = 1 << 20
	// defaultMaxInput is the default of --max-input.
	defaultMaxInput = 64 << 20
	// recordOverhead is what one record counts against --max-input on top
	// of its topic and payload: about what it costs in memory between stdin
	// and the queue file (the record itself, its copy for bbolt, bbolt's
	// node entry). Without it a stream of one-byte lines would hold tens of
	// millions of records, gigabytes, before reaching the limit.
	recordOverhead = 256
)

func enqueueCommand(e *env) *cli.Command {
	flags := concat(commonFlags(), queueFlags(), enqueueOnlyFlags())
	cmd := command("enqueue", "store one or more readings durably in the queue", "[PAYLOAD | -]", flags, func(c *cli.Context) error {
		return runEnqueue(c, e)
	})
	cmd.Description = "Exits 0 only once every record of the call is on disk (fsync'd), all in one transaction.\n" +
		"Bad input is rejected before anything is written (exit 2), and so is input beyond --max-input: each\n" +
		"record counts its topic and payload bytes plus 256, and stdin may not exceed --max-input bytes.\n" +
		"A topic must be one a strict broker (mosquitto) accepts: well-formed UTF-8 without control characters\n" +
		"(U+0000-U+001F, U+007F-U+009F) or non-characters (U+FDD0-U+FDEF, U+xFFFE, U+xFFFF), no + or #,\n" +
		"1 to 65535 bytes, at most 201 levels. --ndjson never rewrites bytes: invalid UTF-8 in a string is an\n" +
		"error naming the line (give binary payloads as payload_base64).\n" +
		"SIGINT, SIGTERM or SIGHUP while it reads stdin end it at once with nothing written (exit 1)."
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
		int64Flag("max-input", defaultMaxInput, "most one call accepts, in bytes: of stdin, and of records (topic + payload + 256 each)"),
	}
}

func runEnqueue(c *cli.Context, e *env) error {
	recs, err := parseEnqueueInput(c, e.stdin)
	if err != nil {
		return err
	}
	_, q, err := loggedQueue(c, e)
	if err != nil {
		return err
	}
	defer q.Close()
	// A signal that came while the queue was being opened still means the
	// caller gave up: write nothing.
	if err := interrupted(c.Context); err != nil {
		return err
	}
	if _, err := q.Enqueue(recs...); err != nil {
		return fmt.Errorf("enqueue %d record(s): %w", len(recs), err)
	}
	return nil
}

// interruptedError reports a signal (the command's context cancelled) that
// ended the call before anything was written.
type interruptedError struct{ cause error }

func (e interruptedError) Error() string {
	return fmt.Sprintf("enqueue interrupted (%v): nothing was written", e.cause)
}

func (e interruptedError) Unwrap() error { return e.cause }

func interrupted(ctx context.Context) error {
	if ctx.Err() == nil {
		return nil
	}
	return interruptedError{context.Cause(ctx)}
}

// enqueueLimits are the bounds of one call.
type enqueueLimits struct {
	maxPayload int64
	maxInput   int64
	used       int64 // what the records so far count against maxInput
}

var errInputLimit = errors.New("input limit")

// add counts one record against --max-input.
func (l *enqueueLimits) add(topic string, payload []byte) error {
	l.used += recordOverhead + int64(len(topic)) + int64(len(payload))
	if l.used > l.maxInput {
		return errInputLimit
	}
	return nil
}

func (l *enqueueLimits) exceeded(where string) error {
	return usagef("--max-input %d bytes exceeded%s (each record counts its topic, its payload and %d bytes): nothing was written",
		l.maxInput, where, recordOverhead)
}

// parseEnqueueInput reads and validates everything before the queue is
// touched, so bad input leaves the queue unchanged. It reads stdin only
// while c.Context lives: a signal ends the read at once.
func parseEnqueueInput(c *cli.Context, stdin io.Reader) ([]queue.Record, error) {
	lines, ndjson := c.Bool("lines"), c.Bool("ndjson")
	if lines && ndjson {
		return nil, usagef("--lines and --ndjson exclude each other")
	}
	lim := &enqueueLimits{maxPayload: c.Int64("max-payload"), maxInput: c.Int64("max-input")}
	if lim.maxPayload <= 0 {
		return nil, usagef("--max-payload must be positive")
	}
	if lim.maxInput <= 0 {
		return nil, usagef("--max-input must be positive")
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
	in := &ctxReader{ctx: c.Context, r: stdin}

	if ndjson {
		if c.NArg() > 0 {
			return nil, usagef("--ndjson reads stdin; do not give a PAYLOAD argument")
		}
		return readNDJSON(in, lim, defaults, ttl, withTTL)
	}
	if defaults.Topic == "" {
		return nil, usagef("--topic is required")
	}
	if err := codec.ValidateTopicName(defaults.Topic); err != nil {
		return nil, usagef("--topic: %v", err)
	}
	if lines {
		if c.NArg() > 0 {
			return nil, usagef("--lines reads stdin; do not give a PAYLOAD argument")
		}
		return readLines(in, lim, withTTL(defaults, ttl))
	}
	if c.NArg() > 1 {
		return nil, usagef("give one PAYLOAD argument (quote it), or - to read stdin; got %d", c.NArg())
	}
	r := defaults
	switch arg := c.Args().First(); {
	case c.NArg() == 0 || arg == "-":
		b, err := io.ReadAll(io.LimitReader(in, min(lim.maxPayload, lim.maxInput)+1))
		if err != nil {
			return nil, readError(err)
		}
		r.Payload = b
	default:
		r.Payload = []byte(arg)
	}
	if int64(len(r.Payload)) > lim.maxPayload {
		return nil, usagef("payload of %d bytes is over --max-payload %d", len(r.Payload), lim.maxPayload)
	}
	if err := lim.add(r.Topic, r.Payload); err != nil {
		return nil, lim.exceeded("")
	}
	return []queue.Record{withTTL(r, ttl)}, nil
}

// readError wraps an error reading stdin; a signal stays an
// interruptedError (exit 1, its own message).
func readError(err error) error {
	if errors.As(err, new(interruptedError)) {
		return err
	}
	return fmt.Errorf("read stdin: %w", err)
}

// readLines makes one record of each non-empty stdin line.
func readLines(in io.Reader, lim *enqueueLimits, rec queue.Record) ([]queue.Record, error) {
	// A line is a payload: it may be as long as --max-payload allows.
	lr := newLineReader(in, max(maxLineBytes, lim.maxPayload), lim.maxInput)
	var recs recordBuffer
	for {
		line, err := lr.next()
		switch {
		case errors.Is(err, io.EOF):
			if recs.n == 0 {
				return nil, usagef("--lines: stdin held no lines")
			}
			return recs.all(), nil
		case errors.Is(err, errInputLimit):
			return nil, lim.exceeded(fmt.Sprintf(" at line %d", lr.n))
		case errors.Is(err, errLineTooLong):
			return nil, usagef("line %d: payload over --max-payload %d", lr.n, lim.maxPayload)
		case err != nil:
			return nil, readError(err)
		}
		if len(line) == 0 {
			continue
		}
		if int64(len(line)) > lim.maxPayload {
			return nil, usagef("line %d: payload of %d bytes is over --max-payload %d", lr.n, len(line), lim.maxPayload)
		}
		if err := lim.add(rec.Topic, line); err != nil {
			return nil, lim.exceeded(fmt.Sprintf(" at line %d", lr.n))
		}
		r := rec
		r.Payload = recs.copyPayload(line)
		recs.add(r)
	}
}

// recordBuffer holds the records of one call while stdin is read, in
// fixed-size chunks, and small payloads in shared blocks, so that memory
// grows with the records and not with the garbage of growing slices.
type recordBuffer struct {
	chunks [][]queue.Record
	n      int
	block  []byte
}

const (
	recordChunk     = 4096
	payloadBlock    = 1 << 20
	ownPayloadAbove = 64 << 10
)

func (b *recordBuffer) add(r queue.Record) {
	if b.n%recordChunk == 0 {
		b.chunks = append(b.chunks, make([]queue.Record, 0, recordChunk))
	}
	last := &b.chunks[len(b.chunks)-1]
	*last = append(*last, r)
	b.n++
}

// copyPayload copies p, which the caller is about to reuse.
func (b *recordBuffer) copyPayload(p []byte) []byte {
	if len(p) > ownPayloadAbove {
		return bytes.Clone(p)
	}
	if cap(b.block)-len(b.block) < len(p) {
		b.block = make([]byte, 0, payloadBlock)
	}
	start := len(b.block)
	b.block = append(b.block, p...)
	return b.block[start:len(b.block):len(b.block)]
}

// all returns the records as one slice.
func (b *recordBuffer) all() []queue.Record {
	if len(b.chunks) == 1 {
		return b.chunks[0]
	}
	recs := make([]queue.Record, 0, b.n)
	for i, c := range b.chunks {
		recs = append(recs, c...)
		b.chunks[i] = nil
	}
	return recs
}

var errLineTooLong = errors.New("line too long")

// lineReader reads stdin one line at a time with a bound on each line and on
// all it reads, so memory stays flat whatever the producer sends.
type lineReader struct {
	br      *bufio.Reader
	maxLine int64 // longest line, without its "\r\n"
	maxRead int64 // most bytes read in all
	read    int64
	n       int // number of the line last returned (or being read)
	buf     []byte
}

func newLineReader(r io.Reader, maxLine, maxRead int64) *lineReader {
	return &lineReader{br: bufio.NewReaderSize(r, 64<<10), maxLine: maxLine, maxRead: maxRead}
}

// next returns the next line without its "\n" or "\r\n", valid until the
// next call; io.EOF after the last. It fails with errInputLimit once more
// than maxRead bytes were read, and with errLineTooLong for a line longer
// than maxLine, without reading the rest of either.
func (lr *lineReader) next() ([]byte, error) {
	lr.n++
	lr.buf = lr.buf[:0]
	for {
		frag, err := lr.br.ReadSlice('\n')
		lr.read += int64(len(frag))
		if lr.read > lr.maxRead {
			return nil, errInputLimit
		}
		line := frag
		if len(lr.buf) > 0 || errors.Is(err, bufio.ErrBufferFull) {
			lr.buf = append(lr.buf, frag...)
			line = lr.buf
		}
		if int64(len(line)) > lr.maxLine+2 {
			return nil, errLineTooLong
		}
		switch {
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF) && len(line) == 0:
			lr.n--
			return nil, io.EOF
		case err != nil && err != io.EOF:
			return nil, err
		}
		line = bytes.TrimSuffix(line, []byte("\n"))
		line = bytes.TrimSuffix(line, []byte("\r"))
		if int64(len(line)) > lr.maxLine {
			return nil, errLineTooLong
		}
		return line, nil
	}
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

// ndjsonLineCap is the longest --ndjson line: a payload of --max-payload
// bytes and a topic of 65,535, every byte written as a six-byte \u escape.
func ndjsonLineCap(maxPayload int64) int64 {
	const most = 1 << 40 // beyond any --max-input; keeps the sum from overflowing
	return max(maxLineBytes, 6*(min(maxPayload, most)+0xffff)+4096)
}

func readNDJSON(in io.Reader, lim *enqueueLimits, defaults queue.Record, defTTL time.Duration,
	withTTL func(queue.Record, time.Duration) queue.Record) ([]queue.Record, error) {
	lr := newLineReader(in, ndjsonLineCap(lim.maxPayload), lim.maxInput)
	var recs recordBuffer
	validTopic, haveValid := "", false // the last topic that passed: checked once per run of equal topics
	for {
		line, err := lr.next()
		switch {
		case errors.Is(err, io.EOF):
			if recs.n == 0 {
				return nil, usagef("--ndjson: stdin held no records")
			}
			return recs.all(), nil
		case errors.Is(err, errInputLimit):
			return nil, lim.exceeded(fmt.Sprintf(" at line %d", lr.n))
		case errors.Is(err, errLineTooLong):
			return nil, usagef("line %d: longer than %d bytes", lr.n, lr.maxLine)
		case err != nil:
			return nil, readError(err)
		}
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		where := fmt.Sprintf("line %d: ", lr.n)
		r, ttl, err := decodeNDJSONLine(line, defaults, defTTL)
		if err != nil {
			return nil, usagef("%s%v", where, err)
		}
		if !haveValid || r.Topic != validTopic {
			if err := codec.ValidateTopicName(r.Topic); err != nil {
				return nil, usagef("%s%v", where, err)
			}
			validTopic, haveValid = r.Topic, true
		}
		r.Topic = validTopic // share one copy of a repeated topic
		if int64(len(r.Payload)) > lim.maxPayload {
			return nil, usagef("%spayload of %d bytes is over --max-payload %d", where, len(r.Payload), lim.maxPayload)
		}
		if err := lim.add(r.Topic, r.Payload); err != nil {
			return nil, lim.exceeded(fmt.Sprintf(" at line %d", lr.n))
		}
		recs.add(withTTL(r, ttl))
	}
}

// decodeNDJSONLine decodes one --ndjson object. Its strings must be exactly
// representable: encoding/json would turn invalid UTF-8 and unpaired
// surrogate escapes into U+FFFD, silently changing a topic or a payload.
func decodeNDJSONLine(line []byte, defaults queue.Record, defTTL time.Duration) (queue.Record, time.Duration, error) {
	if err := checkJSONStrings(line); err != nil {
		return queue.Record{}, 0, err
	}
	var in ndjsonRecord
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		return queue.Record{}, 0, fmt.Errorf("bad JSON: %w", err)
	}
	if dec.More() {
		return queue.Record{}, 0, errors.New("bad JSON: more than one value on the line")
	}
	r := defaults
	if in.Topic != nil {
		r.Topic = *in.Topic
	}
	switch {
	case in.Payload != nil && in.PayloadBase64 != nil:
		return r, 0, errors.New("give payload or payload_base64, not both")
	case in.Payload != nil:
		r.Payload = []byte(*in.Payload)
	case in.PayloadBase64 != nil:
		b, err := base64.StdEncoding.DecodeString(*in.PayloadBase64)
		if err != nil {
			return r, 0, fmt.Errorf("payload_base64: %w", err)
		}
		r.Payload = b
	default:
		return r, 0, errors.New("no payload or payload_base64")
	}
	if in.QoS != nil {
		if *in.QoS < 0 || *in.QoS > 2 {
			return r, 0, fmt.Errorf("qos %d: use 0, 1 or 2", *in.QoS)
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
			return r, 0, fmt.Errorf("ttl: %w", err)
		}
		ttl = d
	}
	return r, ttl, nil
}

// checkJSONStrings reports the first JSON string of line, naming its field,
// that encoding/json could only decode by rewriting it: one with bytes that
// are not UTF-8, or with a \uD800-\uDFFF escape that is not half of a
// surrogate pair. Lines that are not JSON pass; the decoder reports them.
func checkJSONStrings(line []byte) error {
	if utf8.Valid(line) && !mayHaveSurrogateEscape(line) {
		return nil // the common case: nothing to rewrite
	}
	type frame struct {
		object  bool
		wantKey bool
		key     string
	}
	var stack []frame
	dec := json.NewDecoder(bytes.NewReader(line))
	for {
		start := dec.InputOffset()
		tok, err := dec.Token()
		if err != nil {
			return nil // io.EOF, or not JSON: Decode says what is wrong
		}
		end := dec.InputOffset()
		isKey := false
		switch tok := tok.(type) {
		case json.Delim:
			switch tok {
			case '{', '[':
				stack = append(stack, frame{object: tok == '{', wantKey: tok == '{'})
			default:
				stack = stack[:len(stack)-1]
				if n := len(stack); n > 0 && stack[n-1].object {
					stack[n-1].wantKey = true
				}
			}
			continue
		case string:
			if n := len(stack); n > 0 && stack[n-1].object && stack[n-1].wantKey {
				isKey = true
				stack[n-1].key, stack[n-1].wantKey = tok, false
			}
		}
		if n := len(stack); !isKey && n > 0 && stack[n-1].object {
			stack[n-1].wantKey = true
		}
		if _, ok := tok.(string); !ok {
			continue
		}
		// The raw token: what follows the separators before it.
		quote := int(start) + bytes.IndexByte(line[start:end], '"')
		problem, at := rawJSONStringProblem(line[quote:end])
		if problem == "" {
			continue
		}
		field := "a field name"
		switch {
		case isKey:
		case len(stack) > 0 && stack[0].object:
			field = strconv.Quote(stack[0].key)
		default:
			field = "a string"
		}
		hint := ""
		if field == `"payload"` {
			hint = "; give binary payloads as payload_base64"
		}
		return fmt.Errorf("%s: %s at column %d%s", field, problem, quote+at+1, hint)
	}
}

// mayHaveSurrogateEscape reports whether line has something like \uD800;
// false positives only cost the slow check.
func mayHaveSurrogateEscape(line []byte) bool {
	for i := 0; ; {
		j := bytes.Index(line[i:], []byte(`\u`))
		if j < 0 {
			return false
		}
		i += j + 2
		if i < len(line) && (line[i] == 'd' || line[i] == 'D') {
			return true
		}
	}
}

// rawJSONStringProblem describes why the raw JSON string token raw (with
// its quotes) cannot be decoded without rewriting, and where in raw; or
// returns "".
func rawJSONStringProblem(raw []byte) (string, int) {
	for i := 0; i < len(raw); {
		c := raw[i]
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRune(raw[i:])
			if r == utf8.RuneError && size == 1 {
				return fmt.Sprintf("invalid UTF-8 (byte 0x%02x)", c), i
			}
			i += size
			continue
		}
		if c != '\\' {
			i++
			continue
		}
		if i+1 < len(raw) && raw[i+1] != 'u' {
			i += 2
			continue
		}
		hi, ok := hex4(raw, i+2)
		if !ok {
			return "", 0 // malformed escape: the decoder reports it
		}
		switch {
		case hi >= 0xdc00 && hi <= 0xdfff:
			return fmt.Sprintf(`unpaired surrogate escape \u%04x (not UTF-8)`, hi), i
		case hi >= 0xd800 && hi <= 0xdbff:
			lo, ok := hex4(raw, i+8)
			if i+7 >= len(raw) || raw[i+6] != '\\' || raw[i+7] != 'u' || !ok || lo < 0xdc00 || lo > 0xdfff {
				return fmt.Sprintf(`unpaired surrogate escape \u%04x (not UTF-8)`, hi), i
			}
			i += 12
		default:
			i += 6
		}
	}
	return "", 0
}

// hex4 reads the four hex digits at raw[i:].
func hex4(raw []byte, i int) (rune, bool) {
	if i < 0 || i+4 > len(raw) {
		return 0, false
	}
	v, err := strconv.ParseUint(string(raw[i:i+4]), 16, 16)
	return rune(v), err == nil
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

// ctxReader reads stdin only while ctx lives. A read blocked on a quiet
// producer cannot be interrupted, so one goroutine reads and hands over
// chunks; Read returns an interruptedError as soon as ctx is done, even in
// the middle of an endless stream. The goroutine is started by the first
// Read and, at a signal, left blocked: the process is about to exit.
type ctxReader struct {
	ctx     context.Context
	r       io.Reader
	chunks  chan readChunk
	cur     []byte
	pending error // the reader's error, returned once cur is used up
	err     error // sticky
}

type readChunk struct {
	b   []byte
	err error
}

func (cr *ctxReader) Read(p []byte) (int, error) {
	if cr.err == nil {
		cr.err = interrupted(cr.ctx)
	}
	if cr.err != nil {
		return 0, cr.err
	}
	if cr.chunks == nil {
		cr.chunks = make(chan readChunk)
		go cr.pump()
	}
	for len(cr.cur) == 0 {
		if cr.pending != nil {
			cr.err = cr.pending
			return 0, cr.err
		}
		select {
		case <-cr.ctx.Done():
			cr.err = interrupted(cr.ctx)
			return 0, cr.err
		case c := <-cr.chunks:
			cr.cur, cr.pending = c.b, c.err
		}
	}
	n := copy(p, cr.cur)
	cr.cur = cr.cur[n:]
	return n, nil
}

// pump reads into two buffers in turn. The channel is unbuffered, so the
// hand-over of one buffer completes only when Read has used up the other.
func (cr *ctxReader) pump() {
	var bufs [2][]byte
	for i := 0; ; i ^= 1 {
		if bufs[i] == nil {
			bufs[i] = make([]byte, 64<<10)
		}
		n, err := cr.r.Read(bufs[i])
		select {
		case cr.chunks <- readChunk{bufs[i][:n], err}:
		case <-cr.ctx.Done():
			return
		}
		if err != nil {
			return
		}
	}
}
