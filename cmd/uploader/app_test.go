package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nbiot-uploader/uploader/queue"
)

// runApp runs the whole command line in-process.
func runApp(t *testing.T, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	code = run(ctx, append([]string{"uploader"}, args...), strings.NewReader(stdin), &out, &errb)
	return code, out.String(), errb.String()
}

func tempDB(t *testing.T) string {
	t.Helper()
	return filepath.Join(t.TempDir(), "queue.db")
}

func readAll(t *testing.T, db string) []queue.Record {
	t.Helper()
	q, err := queue.Open(db, nil)
	if err != nil {
		t.Fatalf("open queue: %v", err)
	}
	defer q.Close()
	recs, err := q.Read(0, 1<<20, 1<<30)
	if err != nil {
		t.Fatalf("read queue: %v", err)
	}
	return recs
}

func TestEnqueueForms(t *testing.T) {
	tests := []struct {
		name     string
		stdin    string
		args     []string
		topics   []string
		payloads []string
		qos      byte
	}{
		{"argument", "", []string{"--topic", "a/b", "hello"}, []string{"a/b"}, []string{"hello"}, 1},
		{"stdin dash", "from stdin\n", []string{"--topic", "a/b", "--qos", "0", "-"}, []string{"a/b"}, []string{"from stdin\n"}, 0},
		{"stdin implicit", "x", []string{"--topic", "a/b", "--qos", "2"}, []string{"a/b"}, []string{"x"}, 2},
		{"lines", "one\r\ntwo\n\nthree", []string{"--topic", "s/t", "--lines"}, []string{"s/t", "s/t", "s/t"}, []string{"one", "two", "three"}, 1},
		{"ndjson", `{"topic":"x/1","payload":"p1","qos":0}` + "\n" + `{"topic":"x/2","payload_base64":"AAEC","ttl":"1h"}` + "\n",
			[]string{"--ndjson"}, []string{"x/1", "x/2"}, []string{"p1", "\x00\x01\x02"}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db := tempDB(t)
			code, _, stderr := runApp(t, tt.stdin, append([]string{"enqueue", "--db", db}, tt.args...)...)
			if code != 0 {
				t.Fatalf("exit %d, stderr %q", code, stderr)
			}
			recs := readAll(t, db)
			if len(recs) != len(tt.payloads) {
				t.Fatalf("got %d records, want %d", len(recs), len(tt.payloads))
			}
			for i, r := range recs {
				if r.Topic != tt.topics[i] || string(r.Payload) != tt.payloads[i] {
					t.Errorf("record %d = %q %q, want %q %q", i, r.Topic, r.Payload, tt.topics[i], tt.payloads[i])
				}
			}
			if recs[0].QoS != tt.qos {
				t.Errorf("qos = %d, want %d", recs[0].QoS, tt.qos)
			}
		})
	}
}

func TestEnqueueTTLAndRetain(t *testing.T) {
	db := tempDB(t)
	code, _, stderr := runApp(t, "", "enqueue", "--db", db, "--topic", "a", "--retain", "--ttl", "10m", "v")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	r := readAll(t, db)[0]
	if !r.Retain {
		t.Error("retain not stored")
	}
	if d := time.Until(r.ExpiresAt); d < 9*time.Minute || d > 10*time.Minute {
		t.Errorf("expiry in %s, want about 10m", d)
	}
}

// Bad input is rejected with a one-line error, exit 2, and the queue unchanged.
func TestEnqueueBadInput(t *testing.T) {
	long := strings.Repeat("a", 65536)
	tests := []struct {
		name  string
		stdin string
		args  []string
		want  string
	}{
		{"wildcard +", "", []string{"--topic", "a/+/b", "v"}, "wildcard"},
		{"wildcard #", "", []string{"--topic", "a/#", "v"}, "wildcard"},
		{"empty topic", "", []string{"--topic", "", "v"}, "--topic is required"},
		{"ill-formed utf-8", "", []string{"--topic", "a/\xff\xfe", "v"}, "UTF-8"},
		{"topic too long", "", []string{"--topic", long, "v"}, "65535"},
		{"qos 3", "", []string{"--topic", "a", "--qos", "3", "v"}, "--qos 3"},
		{"payload over max", "", []string{"--topic", "a", "--max-payload", "4", "12345"}, "over --max-payload"},
		{"bad json line 2", `{"topic":"a","payload":"x"}` + "\n" + `{"topic":` + "\n", []string{"--ndjson"}, "line 2: bad JSON"},
		{"json wildcard line 3", `{"topic":"a","payload":"x"}` + "\n\n" + `{"topic":"a/#","payload":"x"}` + "\n", []string{"--ndjson"}, "line 3"},
		{"json qos line 1", `{"topic":"a","payload":"x","qos":5}`, []string{"--ndjson"}, "line 1: qos 5"},
		{"json unknown field", `{"topic":"a","payload":"x","colour":1}`, []string{"--ndjson"}, "line 1: bad JSON"},
		{"lines one bad", "ok\n", []string{"--topic", "a/+", "--lines"}, "wildcard"},
		{"unknown flag", "", []string{"--topic", "a", "--bogus", "v"}, "bogus"},
		{"two payloads", "", []string{"--topic", "a", "x", "y"}, "one PAYLOAD"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db := tempDB(t)
			// A record already stored must survive the bad call untouched.
			if code, _, e := runApp(t, "", "enqueue", "--db", db, "--topic", "keep", "me"); code != 0 {
				t.Fatalf("seed: %s", e)
			}
			code, stdout, stderr := runApp(t, tt.stdin, append([]string{"enqueue", "--db", db}, tt.args...)...)
			if code != 2 {
				t.Fatalf("exit %d, want 2 (stderr %q)", code, stderr)
			}
			if !strings.Contains(stderr, tt.want) {
				t.Errorf("stderr %q does not name %q", stderr, tt.want)
			}
			if n := strings.Count(strings.TrimRight(stderr, "\n"), "\n"); n != 0 {
				t.Errorf("error is %d lines, want one: %q", n+1, stderr)
			}
			if stdout != "" {
				t.Errorf("stdout %q, want nothing", stdout)
			}
			recs := readAll(t, db)
			if len(recs) != 1 || recs[0].Topic != "keep" {
				t.Errorf("queue changed: %d records", len(recs))
			}
		})
	}
}

// Configuration precedence: flag > environment > file > default. Each layer
// sets an invalid baud so the error names which value won.
func TestConfigPrecedence(t *testing.T) {
	dir := t.TempDir()
	cfgFile := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(cfgFile, []byte("baud: 1111\nbroker: 127.0.0.1:1883\nclient-id: x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tomlFile := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(tomlFile, []byte("baud = 3333\nbroker = \"127.0.0.1:1883\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	db := filepath.Join(dir, "q.db")
	check := func(t *testing.T, want string, args ...string) {
		t.Helper()
		code, _, stderr := runApp(t, "", append([]string{"flush", "--db", db}, args...)...)
		if code != 2 || !strings.Contains(stderr, want) {
			t.Errorf("exit %d stderr %q, want exit 2 naming %q", code, stderr, want)
		}
	}
	t.Run("file", func(t *testing.T) { check(t, "--baud 1111", "--config", cfgFile) })
	t.Run("toml file", func(t *testing.T) { check(t, "--baud 3333", "--config", tomlFile) })
	t.Run("env over file", func(t *testing.T) {
		t.Setenv("UPLOADER_BAUD", "2222")
		check(t, "--baud 2222", "--config", cfgFile)
	})
	t.Run("flag over env", func(t *testing.T) {
		t.Setenv("UPLOADER_BAUD", "2222")
		check(t, "--baud 999", "--config", cfgFile, "--baud", "999")
	})
	t.Run("config via env", func(t *testing.T) {
		t.Setenv("UPLOADER_CONFIG", cfgFile)
		check(t, "--baud 1111")
	})
}

// Every configuration value is validated with a message naming it.
func TestFlushBadConfig(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "q.db")
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"unknown transport", []string{"--transport", "carrier-pigeon", "--broker", "h:1"}, "unknown --transport"},
		{"non-standard baud", []string{"--baud", "12345", "--broker", "h:1"}, "--baud 12345"},
		{"broker without port", []string{"--broker", "example.org"}, "--broker"},
		{"broker missing", nil, "--broker is empty"},
		{"bad port", []string{"--broker", "h:99999"}, "port"},
		{"unreadable password file", []string{"--broker", "h:1", "--password-file", filepath.Join(dir, "nope")}, "--password-file"},
		{"unreadable CA file", []string{"--broker", "h:1", "--tls", "--ca-file", filepath.Join(dir, "nope.pem")}, "--ca-file"},
		{"cert without key", []string{"--broker", "h:1", "--tls", "--cert-file", "/etc/hostname"}, "--key-file"},
		{"bad mqtt version", []string{"--broker", "h:1", "--mqtt-version", "4.0"}, "--mqtt-version"},
		{"bad queue policy", []string{"--broker", "h:1", "--queue-policy", "keep-all"}, "--queue-policy"},
		{"power on without off", []string{"--broker", "h:1", "--power-on-cmd", "true"}, "--power-off-cmd"},
		{"no keep-alive on the modem", []string{"--broker", "h:1", "--keepalive", "0"}, "--keepalive 0"},
		{"missing config file", []string{"--config", filepath.Join(dir, "none.yaml")}, "--config"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, stderr := runApp(t, "", append([]string{"flush", "--db", db}, tt.args...)...)
			if code != 2 {
				t.Fatalf("exit %d, want 2: %q", code, stderr)
			}
			if !strings.Contains(stderr, tt.want) {
				t.Errorf("stderr %q does not name %q", stderr, tt.want)
			}
		})
	}
}

func TestRunBadSchedule(t *testing.T) {
	db := tempDB(t)
	for _, spec := range []string{"every hour", "61 * * * *", "@fortnightly"} {
		code, _, stderr := runApp(t, "", "run", "--db", db, "--broker", "h:1", "--schedule", spec)
		if code != 2 || !strings.Contains(stderr, "--schedule") {
			t.Errorf("schedule %q: exit %d stderr %q", spec, code, stderr)
		}
	}
	code, _, stderr := runApp(t, "", "run", "--db", db, "--broker", "h:1")
	if code != 2 || !strings.Contains(stderr, "--schedule is required") {
		t.Errorf("no schedule: exit %d stderr %q", code, stderr)
	}
}

func TestStatus(t *testing.T) {
	db := tempDB(t)
	if code, _, e := runApp(t, "a\nb\nc\n", "enqueue", "--db", db, "--topic", "x/y", "--lines"); code != 0 {
		t.Fatal(e)
	}
	code, out, stderr := runApp(t, "", "status", "--db", db, "--json", "--client-id", "site-1")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var r statusReport
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("status --json: %v\n%s", err, out)
	}
	if r.Depth != 3 || r.Bytes == 0 || r.FileSize == 0 || r.OldestAgeSeconds == nil || r.ClientID != "site-1" {
		t.Errorf("status = %+v", r)
	}
	if r.LastWindow != nil {
		t.Errorf("last window = %+v before any window", r.LastWindow)
	}
	code, out, _ = runApp(t, "", "status", "--db", db)
	if r.NextWindow != nil || r.Daemon.Running {
		t.Errorf("a plan or a daemon without any daemon: %+v, %+v", r.NextWindow, r.Daemon)
	}
	if code != 0 || !strings.Contains(out, "depth:          3 records") || !strings.Contains(out, "last window:    none yet") ||
		!strings.Contains(out, "next window:    none: no daemon runs") {
		t.Errorf("status text:\n%s", out)
	}
	if r.InterruptedSendUntil != nil || strings.Contains(out, "interrupted:") {
		t.Errorf("an interrupted send reported without a mark: %v\n%s", r.InterruptedSendUntil, out)
	}

	// The mark a window dying mid-PUBLISH leaves beside the modem lock.
	until := time.Now().Add(time.Minute).UTC().Truncate(time.Second)
	mark := "mid-packet until " + until.Format(time.RFC3339Nano) + " hold 2m0s\n"
	if err := os.WriteFile(db+".modem.midpacket", []byte(mark), 0o644); err != nil {
		t.Fatal(err)
	}
	_, out, _ = runApp(t, "", "status", "--db", db, "--json")
	r = statusReport{}
	if err := json.Unmarshal([]byte(out), &r); err != nil || r.InterruptedSendUntil == nil || !r.InterruptedSendUntil.Equal(until) {
		t.Errorf("status --json with a mark until %v: %v, %v", until, r.InterruptedSendUntil, err)
	}
	_, out, _ = runApp(t, "", "status", "--db", db)
	if !strings.Contains(out, "interrupted:    a window died in the middle of a PUBLISH") {
		t.Errorf("status text does not show the interrupted send:\n%s", out)
	}
}

func TestHelpShowsDefaults(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"enqueue", "--help"}, {"flush", "--help"}, {"run", "--help"}, {"status", "--help"}, {"modem", "check", "--help"}, {"simulate", "--help"}, {"demo", "--help"}} {
		code, out, _ := runApp(t, "", args...)
		if code != 0 {
			t.Errorf("%v: exit %d", args, code)
		}
		if len(args) > 1 && !strings.Contains(out, "default:") {
			t.Errorf("%v: help shows no defaults:\n%s", args, out)
		}
	}
	_, out, _ := runApp(t, "", "flush", "--help")
	for _, want := range []string{"--broker", "--mqtt-version", "UPLOADER_BROKER", "/var/lib/uploader/queue.db", "--window-timeout"} {
		if !strings.Contains(out, want) {
			t.Errorf("flush --help lacks %q", want)
		}
	}
}

func TestModemATBadCommand(t *testing.T) {
	db := tempDB(t)
	code, _, stderr := runApp(t, "", "modem", "at", "--db", db, "--device", "/dev/null", "CSQ")
	if code != 2 || !strings.Contains(stderr, "not an AT command") {
		t.Errorf("exit %d stderr %q", code, stderr)
	}
}
