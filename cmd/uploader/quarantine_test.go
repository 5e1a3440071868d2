package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"

	"github.com/nbiot-uploader/uploader/queue"
	"github.com/nbiot-uploader/uploader/uplink"
)

// quarantineDB makes a queue with records 1..4 of which 2 and 4 are
// quarantined (4 with a binary payload).
func quarantineDB(t *testing.T) string {
	t.Helper()
	db := tempDB(t)
	q, err := queue.Open(db, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	_, err = q.Enqueue(
		queue.Record{Topic: "s/ok", Payload: []byte("1"), QoS: 1},
		queue.Record{Topic: "s/denied", Payload: []byte(`{"v":2}`), QoS: 1},
		queue.Record{Topic: "s/ok", Payload: []byte("3"), QoS: 1},
		queue.Record{Topic: "s/denied", Payload: []byte{0xff, 0}, QoS: 2, Retain: true},
	)
	if err != nil {
		t.Fatal(err)
	}
	for _, seq := range []uint64{2, 4} {
		if err := q.Quarantine(seq, "broker refused it: PUBACK reason 0x87 (not authorized)"); err != nil {
			t.Fatal(err)
		}
	}
	return db
}

func listQuarantine(t *testing.T, db string) []quarantinedJSON {
	t.Helper()
	code, out, stderr := runApp(t, "", "quarantine", "list", "--db", db, "--json")
	if code != 0 {
		t.Fatalf("quarantine list --json: exit %d: %s", code, stderr)
	}
	var recs []quarantinedJSON
	if err := json.Unmarshal([]byte(out), &recs); err != nil {
		t.Fatalf("quarantine list --json: %v\n%s", err, out)
	}
	return recs
}

func TestQuarantineList(t *testing.T) {
	db := quarantineDB(t)
	recs := listQuarantine(t, db)
	if len(recs) != 2 || recs[0].Seq != 2 || recs[1].Seq != 4 {
		t.Fatalf("list --json = %+v, want seqs 2 and 4", recs)
	}
	r := recs[0]
	if r.Topic != "s/denied" || r.Payload == nil || *r.Payload != `{"v":2}` || r.PayloadBase64 != nil || r.QoS != 1 ||
		!strings.Contains(r.Reason, "0x87") || r.QuarantinedAt.IsZero() || r.EnqueuedAt.IsZero() {
		t.Errorf("record 2 = %+v", r)
	}
	if b := recs[1]; b.Payload != nil || b.PayloadBase64 == nil || *b.PayloadBase64 != base64.StdEncoding.EncodeToString([]byte{0xff, 0}) || !b.Retain || b.QoS != 2 {
		t.Errorf("binary record 4 = %+v, want payload_base64", b)
	}
	code, out, _ := runApp(t, "", "quarantine", "list", "--db", db)
	if code != 0 || !strings.Contains(out, "seq 2  s/denied  qos 1") || !strings.Contains(out, "reason: broker refused it") || !strings.Contains(out, "2 quarantined") {
		t.Errorf("list text:\n%s", out)
	}
	if got := listQuarantine(t, tempDB(t)); len(got) != 0 {
		t.Errorf("empty quarantine lists %+v", got)
	}
}

func TestQuarantineRetryAndDrop(t *testing.T) {
	db := quarantineDB(t)
	code, out, stderr := runApp(t, "", "quarantine", "retry", "--db", db, "2")
	if code != 0 || !strings.Contains(out, "1 record(s) back in the queue") {
		t.Fatalf("retry 2: exit %d %q %q", code, out, stderr)
	}
	var seqs []uint64
	for _, r := range readAll(t, db) {
		seqs = append(seqs, r.Seq)
	}
	if len(seqs) != 3 || seqs[1] != 2 {
		t.Errorf("queued after retry %v, want [1 2 3]", seqs)
	}
	code, out, stderr = runApp(t, "", "quarantine", "drop", "--db", db, "--all")
	if code != 0 || !strings.Contains(out, "1 quarantined record(s) dropped") {
		t.Fatalf("drop --all: exit %d %q %q", code, out, stderr)
	}
	if got := listQuarantine(t, db); len(got) != 0 {
		t.Errorf("quarantine after drop --all: %+v", got)
	}
	db = quarantineDB(t)
	if code, _, stderr := runApp(t, "", "quarantine", "retry", "--db", db, "--all"); code != 0 || len(readAll(t, db)) != 4 {
		t.Errorf("retry --all: exit %d %s, %d queued", code, stderr, len(readAll(t, db)))
	}
}

// Bad arguments exit 2 with one line; an unknown SEQ exits 1 naming it;
// neither changes anything.
func TestQuarantineBadArguments(t *testing.T) {
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"not a number", []string{"retry", "abc"}, 2, `"abc" is not a sequence number`},
		{"zero", []string{"drop", "0"}, 2, `"0" is not a sequence number`},
		{"negative", []string{"drop", "-1"}, 2, ""},
		{"neither", []string{"retry"}, 2, "give the SEQ"},
		{"both", []string{"drop", "--all", "2"}, 2, "not both"},
		{"list with argument", []string{"list", "2"}, 2, "no arguments"},
		{"unknown seq", []string{"retry", "2", "99"}, 1, "seq 99 is not quarantined"},
		{"queued but not quarantined", []string{"drop", "1"}, 1, "seq 1 is not quarantined"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db := quarantineDB(t)
			args := append([]string{"quarantine", tt.args[0], "--db", db}, tt.args[1:]...)
			code, stdout, stderr := runApp(t, "", args...)
			if code != tt.code || !strings.Contains(stderr, tt.want) {
				t.Errorf("exit %d stderr %q, want exit %d naming %q", code, stderr, tt.code, tt.want)
			}
			if n := strings.Count(strings.TrimRight(stderr, "\n"), "\n"); n != 0 {
				t.Errorf("error is %d lines, want one: %q", n+1, stderr)
			}
			if stdout != "" {
				t.Errorf("stdout %q, want nothing", stdout)
			}
			if got := listQuarantine(t, db); len(got) != 2 {
				t.Errorf("quarantine changed: %d records", len(got))
			}
			if got := len(readAll(t, db)); got != 2 {
				t.Errorf("queue changed: %d records", got)
			}
		})
	}
}

func TestStatusShowsQuarantined(t *testing.T) {
	db := quarantineDB(t)
	_, out, _ := runApp(t, "", "status", "--db", db, "--json")
	var r statusReport
	if err := json.Unmarshal([]byte(out), &r); err != nil || r.Quarantined != 2 || r.Depth != 2 {
		t.Errorf("status --json: quarantined %d depth %d, %v\n%s", r.Quarantined, r.Depth, err, out)
	}
	_, out, _ = runApp(t, "", "status", "--db", db)
	if !strings.Contains(out, "quarantined:    2 ") {
		t.Errorf("status text does not show the quarantined count:\n%s", out)
	}
}

func TestFlushSummaryCountsRefused(t *testing.T) {
	var b bytes.Buffer
	printSummary(&b, uplink.Summary{Outcome: "ok", Acked: 2, Sent: 3, Queued: 3, Refused: 1, Quarantined: 1})
	if !strings.Contains(b.String(), "refused:        1 by the broker, 1 quarantined") {
		t.Errorf("summary:\n%s", b.String())
	}
	b.Reset()
	printSummary(&b, uplink.Summary{Outcome: "ok", Acked: 3, Sent: 3, Queued: 3})
	if strings.Contains(b.String(), "refused") {
		t.Errorf("a window without refusals prints a refused line:\n%s", b.String())
	}
}

func TestFlushSummarySaysHowTLSBegan(t *testing.T) {
	for _, tt := range []struct {
		tls, want string
	}{
		{uplink.TLSResumed, "tls:            resumed handshake\n"},
		{uplink.TLSFull, "tls:            full handshake\n"},
		{"", ""},
	} {
		var b bytes.Buffer
		printSummary(&b, uplink.Summary{Outcome: "ok", Acked: 1, Sent: 1, Queued: 1, TLS: tt.tls})
		if got := strings.Contains(b.String(), "tls:"); got != (tt.want != "") || !strings.Contains(b.String(), tt.want) {
			t.Errorf("TLS %q: summary\n%s", tt.tls, b.String())
		}
	}
}
