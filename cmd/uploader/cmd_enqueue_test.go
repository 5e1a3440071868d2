package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/nbiot-uploader/uploader/queue"
)

// badEnqueue runs one enqueue call that must fail with exit 2, on a queue
// that already holds one record: the error is one line naming want, stdout
// is empty, and the queue still holds exactly that record.
func badEnqueue(t *testing.T, stdin string, want []string, args ...string) string {
	t.Helper()
	db := tempDB(t)
	if code, _, e := runApp(t, "", "enqueue", "--db", db, "--topic", "keep", "me"); code != 0 {
		t.Fatalf("seed: %s", e)
	}
	code, stdout, stderr := runApp(t, stdin, append([]string{"enqueue", "--db", db}, args...)...)
	if code != exitUsage {
		t.Fatalf("exit %d, want 2 (stderr %q)", code, stderr)
	}
	for _, w := range want {
		if !strings.Contains(stderr, w) {
			t.Errorf("stderr %q does not name %q", stderr, w)
		}
	}
	if n := strings.Count(strings.TrimRight(stderr, "\n"), "\n"); n != 0 {
		t.Errorf("error is %d lines, want one: %q", n+1, stderr)
	}
	if stdout != "" {
		t.Errorf("stdout %q, want nothing", stdout)
	}
	if recs := readAll(t, db); len(recs) != 1 || recs[0].Topic != "keep" {
		t.Errorf("queue changed: %d records", len(recs))
	}
	return stderr
}

// The same topic rules as mosquitto's, for --topic and for --ndjson (where a
// JSON escape decodes to the character), with the topic printed once.
func TestEnqueueRefusesTopicsStrictBrokersRefuse(t *testing.T) {
	tests := []struct {
		name  string
		topic string
		want  string
	}{
		{"U+0000", "a\x00b", "U+0000"},
		{"U+0001", "a\x01b", "control character U+0001"},
		{"newline", "a/b\n", "control character U+000A"},
		{"tab", "a\tb", "control character U+0009"},
		{"DEL", "a\x7f", "control character U+007F"},
		{"U+0085", "a\u0085", "control character U+0085"},
		{"U+009F", "a\u009f", "control character U+009F"},
		{"U+FFFE", "a\ufffe", "non-character U+FFFE"},
		{"U+FFFF", "a\uffff", "non-character U+FFFF"},
		{"U+FDD0", "\ufdd0", "non-character U+FDD0"},
		{"U+FDEF", "\ufdef", "non-character U+FDEF"},
		{"U+10FFFF", "\U0010ffff", "non-character U+10FFFF"},
		{"wildcard", "a/+", "wildcard"},
		{"202 levels", strings.Repeat("a/", 201) + "a", "too many levels"},
	}
	for _, tc := range tests {
		t.Run(tc.name+" --topic", func(t *testing.T) {
			stderr := badEnqueue(t, "", []string{"--topic:", tc.want}, "--topic", tc.topic, "v")
			if n := strings.Count(stderr, `topic "`); n != 1 {
				t.Errorf("topic printed %d times: %q", n, stderr)
			}
		})
		t.Run(tc.name+" --ndjson", func(t *testing.T) {
			line, err := json.Marshal(map[string]string{"topic": tc.topic, "payload": "v"})
			if err != nil {
				t.Fatal(err)
			}
			stdin := `{"topic":"ok","payload":"x"}` + "\n" + string(line) + "\n"
			stderr := badEnqueue(t, stdin, []string{"line 2: ", tc.want}, "--ndjson")
			if n := strings.Count(stderr, `topic "`); n != 1 {
				t.Errorf("topic printed %d times: %q", n, stderr)
			}
		})
	}
	// And what strict brokers accept is stored byte for byte.
	for _, topic := range []string{"a b", "a\u00a0b", "\ufdcf/\ufdf0/\ufffd", "capteurs/été/温度", strings.Repeat("a/", 200) + "a"} {
		db := tempDB(t)
		line, _ := json.Marshal(map[string]string{"topic": topic, "payload": "v"})
		if code, _, e := runApp(t, string(line), "enqueue", "--db", db, "--ndjson"); code != 0 {
			t.Fatalf("--ndjson topic %q: exit %d %s", topic, code, e)
		}
		if code, _, e := runApp(t, "", "enqueue", "--db", db, "--topic", topic, "v"); code != 0 {
			t.Fatalf("--topic %q: exit %d %s", topic, code, e)
		}
		for _, r := range readAll(t, db) {
			if r.Topic != topic {
				t.Errorf("stored topic %q, want %q", r.Topic, topic)
			}
		}
	}
}

// --ndjson never turns bytes into U+FFFD: invalid UTF-8 or an unpaired
// surrogate escape in a string is an error naming the line and the field.
func TestEnqueueNDJSONNeverRewritesBytes(t *testing.T) {
	ok := `{"topic":"a","payload":"fine"}` + "\n"
	tests := []struct {
		name string
		line string
		want []string
	}{
		{"payload invalid byte", `{"topic":"a","payload":"x` + "\xff" + `y"}`, []string{"line 2: ", `"payload"`, "invalid UTF-8 (byte 0xff) at column 26", "payload_base64"}},
		{"payload latin-1", `{"topic":"a","payload":"caf` + "\xe9" + `"}`, []string{"line 2: ", `"payload"`, "invalid UTF-8"}},
		{"payload truncated sequence", `{"topic":"a","payload":"` + "\xe2\x82" + `"}`, []string{"line 2: ", `"payload"`, "invalid UTF-8"}},
		{"payload encoded surrogate", `{"topic":"a","payload":"` + "\xed\xa0\x80" + `"}`, []string{"line 2: ", `"payload"`, "invalid UTF-8"}},
		{"topic invalid byte", `{"topic":"a` + "\xfe" + `","payload":"x"}`, []string{"line 2: ", `"topic"`, "invalid UTF-8 (byte 0xfe) at column 12"}},
		{"field name invalid byte", `{"topic":"a","pay` + "\xff" + `load":"x"}`, []string{"line 2: ", "a field name", "invalid UTF-8"}},
		{"ttl invalid byte", `{"topic":"a","payload":"x","ttl":"1` + "\xff" + `"}`, []string{"line 2: ", `"ttl"`, "invalid UTF-8"}},
		{"payload lone high surrogate", `{"topic":"a","payload":"\ud800x"}`, []string{"line 2: ", `"payload"`, `unpaired surrogate escape \ud800`}},
		{"payload lone low surrogate", `{"topic":"a","payload":"x\uDC00"}`, []string{"line 2: ", `"payload"`, `unpaired surrogate escape \udc00`}},
		{"payload high then high", `{"topic":"a","payload":"\ud800\ud800"}`, []string{"line 2: ", `"payload"`, "unpaired"}},
		{"topic lone surrogate", `{"topic":"a\udbff","payload":"x"}`, []string{"line 2: ", `"topic"`, "unpaired"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			badEnqueue(t, ok+tc.line+"\n", tc.want, "--ndjson")
		})
	}

	// What needs no rewriting is stored exactly.
	db := tempDB(t)
	stdin := `{"topic":"a","payload":"\ud83d\ude00 \u00e9 \\ud800 \ufffd` + "\ufffd" + `"}` + "\n"
	if code, _, e := runApp(t, stdin, "enqueue", "--db", db, "--ndjson"); code != 0 {
		t.Fatalf("exit %d: %s", code, e)
	}
	if got, want := string(readAll(t, db)[0].Payload), "\U0001F600 é \\ud800 \ufffd\ufffd"; got != want {
		t.Errorf("payload %q, want %q", got, want)
	}
}

// One call holds at most --max-input bytes of records (topic + payload +
// recordOverhead each) and reads at most --max-input bytes of stdin; beyond
// either it fails naming the limit and the line, and writes nothing.
func TestEnqueueMaxInputBoundsOneCall(t *testing.T) {
	rec := func(topic, payload string) int { return recordOverhead + len(topic) + len(payload) }
	three := "aaaa\nbbbb\ncccc\n"
	limit := strconv.Itoa(3 * rec("t", "aaaa"))
	short := strconv.Itoa(3*rec("t", "aaaa") - 1)
	ndjson := `{"topic":"t","payload":"aaaa"}` + "\n"
	t.Run("lines at the limit", func(t *testing.T) {
		db := tempDB(t)
		if code, _, e := runApp(t, three, "enqueue", "--db", db, "--topic", "t", "--lines", "--max-input", limit); code != 0 {
			t.Fatalf("exit %d: %s", code, e)
		}
		if n := len(readAll(t, db)); n != 3 {
			t.Errorf("%d records, want 3", n)
		}
	})
	t.Run("lines one byte over", func(t *testing.T) {
		badEnqueue(t, three, []string{"--max-input " + short + " bytes exceeded at line 3"}, "--topic", "t", "--lines", "--max-input", short)
	})
	t.Run("ndjson one byte over", func(t *testing.T) {
		badEnqueue(t, "\n"+strings.Repeat(ndjson, 3), []string{"--max-input " + short + " bytes exceeded at line 4"}, "--ndjson", "--max-input", short)
	})
	t.Run("payload argument over", func(t *testing.T) {
		badEnqueue(t, "", []string{"--max-input 100 bytes exceeded"}, "--topic", "t", "--max-input", "100", "v")
	})
	t.Run("stdin payload over", func(t *testing.T) {
		badEnqueue(t, strings.Repeat("x", 1000), []string{"--max-input 300 bytes exceeded"}, "--topic", "t", "--max-input", "300", "-")
	})
	t.Run("blank lines count as read", func(t *testing.T) {
		// No records, but stdin itself is bounded.
		badEnqueue(t, strings.Repeat("\n", 5000)+"x\n", []string{"--max-input 4096 bytes exceeded at line 4097"}, "--topic", "t", "--lines", "--max-input", "4096")
	})
	t.Run("ndjson raw line bounded", func(t *testing.T) {
		// Escapes make the line far longer than its record.
		line := `{"topic":"t","payload":"` + strings.Repeat(`\u0041`, 1000) + `"}` + "\n"
		badEnqueue(t, line, []string{"--max-input 2000 bytes exceeded at line 1"}, "--ndjson", "--max-input", "2000")
	})
	t.Run("not positive", func(t *testing.T) {
		badEnqueue(t, "", []string{"--max-input must be positive"}, "--topic", "t", "--max-input", "0", "v")
	})
	t.Run("documented default", func(t *testing.T) {
		_, stdout, _ := runApp(t, "", "enqueue", "--help")
		if !strings.Contains(stdout, "--max-input value") || !strings.Contains(stdout, "(default: 67108864)") {
			t.Errorf("enqueue --help does not show --max-input with its default 67108864:\n%s", stdout)
		}
	})
}

// An endless --lines producer ends at --max-input with memory bounded by
// it: what the call holds is counted per record, not only its bytes.
func TestEnqueueEndlessLinesStopAtMaxInput(t *testing.T) {
	pr, pw := io.Pipe()
	t.Cleanup(func() { pr.Close() })
	go func() { // `yes hello`
		buf := bytes.Repeat([]byte("hello\n"), 1000)
		for {
			if _, err := pw.Write(buf); err != nil {
				return
			}
		}
	}()
	db := tempDB(t)
	var out, errb bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	code := run(ctx, []string{"uploader", "enqueue", "--db", db, "--topic", "t", "--lines", "--max-input", "1000000"}, pr, &out, &errb)
	if code != exitUsage || !strings.Contains(errb.String(), "--max-input 1000000 bytes exceeded at line 3817") {
		t.Errorf("exit %d stderr %q, want exit 2 at line 3817 (1000000 / (256+1+5) + 1)", code, errb.String())
	}
	if _, err := os.Stat(db); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("queue file: %v, want none written", err)
	}
}

// --lines takes lines as long as --max-payload allows, beyond the 1 MiB
// floor of its line cap.
func TestEnqueueLinesHonourLargeMaxPayload(t *testing.T) {
	long := strings.Repeat("x", 3<<20)
	db := tempDB(t)
	code, _, e := runApp(t, "a\n"+long+"\r\nb\n", "enqueue", "--db", db, "--topic", "t", "--lines", "--max-payload", strconv.Itoa(4<<20))
	if code != 0 {
		t.Fatalf("exit %d: %s", code, e)
	}
	recs := readAll(t, db)
	if len(recs) != 3 || string(recs[1].Payload) != long || string(recs[2].Payload) != "b" {
		t.Fatalf("got %d records, want a, the 3 MiB line, b", len(recs))
	}
	t.Run("over the default", func(t *testing.T) {
		badEnqueue(t, "a\n"+long+"\n", []string{"line 2: payload over --max-payload 262144"}, "--topic", "t", "--lines")
	})
	t.Run("ndjson", func(t *testing.T) {
		db := tempDB(t)
		line := `{"topic":"t","payload":"` + long + `"}`
		if code, _, e := runApp(t, line, "enqueue", "--db", db, "--ndjson", "--max-payload", strconv.Itoa(4<<20)); code != 0 {
			t.Fatalf("exit %d: %s", code, e)
		}
	})
}

// A signal (the command's context cancelled) while enqueue reads stdin ends
// it at once, exit 1, nothing written: with a producer that never stops and
// with one that never writes.
func TestEnqueueSignalWhileReadingStdinWritesNothing(t *testing.T) {
	for _, endless := range []bool{true, false} {
		t.Run(fmt.Sprintf("endless=%v", endless), func(t *testing.T) {
			pr, pw := io.Pipe()
			t.Cleanup(func() { pr.Close() })
			ctx, cancel := context.WithCancelCause(context.Background())
			defer cancel(nil)
			written := make(chan struct{})
			go func() {
				if !endless {
					close(written) // and never write: the read blocks
					return
				}
				line := []byte("reading\n")
				for i := 0; ; i++ {
					if _, err := pw.Write(line); err != nil {
						return
					}
					if i == 1000 { // the command's reader has taken 1000 lines
						close(written)
					}
				}
			}()
			db := tempDB(t)
			var out, errb bytes.Buffer
			done := make(chan int, 1)
			go func() {
				done <- run(ctx, []string{"uploader", "enqueue", "--db", db, "--topic", "t", "--lines"}, pr, &out, &errb)
			}()
			<-written
			cancel(errors.New("terminated signal received"))
			var code int
			select {
			case code = <-done:
			case <-time.After(time.Minute):
				t.Fatal("enqueue still reading a minute after its context was cancelled")
			}
			if code != exitFailure || !strings.Contains(errb.String(), "enqueue interrupted (terminated signal received): nothing was written") {
				t.Errorf("exit %d stderr %q, want exit 1 naming the signal", code, errb.String())
			}
			if _, err := os.Stat(db); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("queue file: %v, want none written", err)
			}
		})
	}
}

func TestCheckJSONStringsNamesTheField(t *testing.T) {
	tests := []struct {
		line string
		want string // "" = passes
	}{
		{`{"topic":"a","payload":"b"}`, ""},
		{`{"topic":"a","payload":"\\ud800"}`, ""}, // an escaped backslash, not an escape
		{`{"topic":"a","payload":"\ud83d\ude00"}`, ""},
		{`not json` + "\xff", ""}, // Decode reports it
		{`{"ttl":{"x":"` + "\xff" + `"},"payload":"b"}`, `"ttl": invalid UTF-8`},
		{`{"qos":["` + "\xff" + `"]}`, `"qos": invalid UTF-8`},
		{`{"topic":"a", "payload" : "` + "\xff" + `"}`, `"payload": invalid UTF-8 (byte 0xff) at column 28`},
		{`["` + "\xff" + `"]`, `a string: invalid UTF-8`},
		{`{"payload":"\udfff"}`, `"payload": unpaired surrogate escape \udfff (not UTF-8) at column 13`},
	}
	for _, tc := range tests {
		err := checkJSONStrings([]byte(tc.line))
		got := ""
		if err != nil {
			got = err.Error()
		}
		if (tc.want == "") != (got == "") || !strings.Contains(got, tc.want) {
			t.Errorf("checkJSONStrings(%q) = %q, want %q", tc.line, got, tc.want)
		}
	}
}

// FuzzDecodeNDJSONLine: a line either fails with a one-line error or decodes
// without inventing a U+FFFD that the line did not spell.
func FuzzDecodeNDJSONLine(f *testing.F) {
	for _, s := range []string{
		`{"topic":"a","payload":"b"}`, `{"payload":"\ud800"}`, `{"payload":"\ud83d\ude00","ttl":5}`,
		`{"topic":"a` + "\xff" + `","payload":"b"}`, `{"payload":"\ufffd` + "\ufffd" + `"}`, `{"payload_base64":"AAE="}`,
		`{"payload":"\\ud800"}`, `{"payload":"\uDBFF\uDFFF"}`, `{"x":[{"y":"` + "\xc0" + `"}]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		r, _, err := decodeNDJSONLine(line, queue.Record{Topic: "d"}, 0)
		if err != nil {
			if strings.ContainsAny(err.Error(), "\n\r") {
				t.Fatalf("error of more than one line: %q", err)
			}
			return
		}
		if !utf8.Valid(line) {
			t.Fatalf("accepted a line that is not UTF-8: %q", line)
		}
		spelt := strings.Count(string(line), "\ufffd") + strings.Count(strings.ToLower(string(line)), `\ufffd`)
		got := strings.Count(r.Topic, "\ufffd")
		var in ndjsonRecord
		if json.Unmarshal(line, &in) == nil && in.PayloadBase64 == nil {
			got += strings.Count(string(r.Payload), "\ufffd") // text, not binary
		}
		if got > spelt {
			t.Fatalf("decoded %d U+FFFD from a line spelling %d: %q -> %q %q", got, spelt, line, r.Topic, r.Payload)
		}
	})
}
