package main

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"

	"github.com/nbiot-uploader/uploader/queue"
)

// inboxDB makes a queue file whose inbox holds a text and a binary message.
func inboxDB(t *testing.T) string {
	t.Helper()
	db := tempDB(t)
	q, err := queue.Open(db, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	for _, m := range []queue.InboxMessage{
		{Topic: "cmd/site/config", Payload: []byte(`{"interval":600}`), QoS: 1, PacketID: 1},
		{Topic: "cmd/site/blob", Payload: []byte{0xff, 0, 1}, QoS: 2, Retain: true, PacketID: 2},
	} {
		if _, _, err := q.PutInbox(m, false, 0); err != nil {
			t.Fatal(err)
		}
	}
	return db
}

func listInbox(t *testing.T, db string) []inboxJSON {
	t.Helper()
	code, out, stderr := runApp(t, "", "inbox", "list", "--db", db, "--json")
	if code != 0 {
		t.Fatalf("inbox list --json: exit %d: %s", code, stderr)
	}
	var msgs []inboxJSON
	if err := json.Unmarshal([]byte(out), &msgs); err != nil {
		t.Fatalf("inbox list --json: %v\n%s", err, out)
	}
	return msgs
}

func TestInboxListShowAck(t *testing.T) {
	db := inboxDB(t)
	msgs := listInbox(t, db)
	if len(msgs) != 2 || msgs[0].ID != 1 || *msgs[0].Payload != `{"interval":600}` || msgs[0].QoS != 1 ||
		msgs[1].PayloadBase64 == nil || *msgs[1].PayloadBase64 != base64.StdEncoding.EncodeToString([]byte{0xff, 0, 1}) || !msgs[1].Retain {
		t.Fatalf("inbox list --json = %+v", msgs)
	}
	code, out, _ := runApp(t, "", "inbox", "list", "--db", db)
	if code != 0 || !strings.Contains(out, "id 1  cmd/site/config  qos 1") || !strings.Contains(out, "2 message(s)") {
		t.Fatalf("inbox list: exit %d\n%s", code, out)
	}
	code, out, _ = runApp(t, "", "inbox", "show", "--db", db, "2")
	if code != 0 || out != "\xff\x00\x01" {
		t.Fatalf("inbox show 2: exit %d, %q", code, out)
	}
	code, out, _ = runApp(t, "", "inbox", "ack", "--db", db, "1")
	if code != 0 || !strings.Contains(out, "1 message(s) removed") {
		t.Fatalf("inbox ack 1: exit %d, %q", code, out)
	}
	if msgs := listInbox(t, db); len(msgs) != 1 || msgs[0].ID != 2 {
		t.Fatalf("after ack 1: %+v", msgs)
	}
	code, out, _ = runApp(t, "", "inbox", "ack", "--all", "--db", db)
	if code != 0 || !strings.Contains(out, "1 message(s) removed") || len(listInbox(t, db)) != 0 {
		t.Fatalf("inbox ack --all: exit %d, %q", code, out)
	}
}

func TestInboxBadInput(t *testing.T) {
	db := inboxDB(t)
	tests := []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"inbox", "ack", "--db", db}, exitUsage, "give the ID"},
		{[]string{"inbox", "ack", "--all", "--db", db, "1"}, exitUsage, "not both"},
		{[]string{"inbox", "ack", "--db", db, "x"}, exitUsage, `"x" is not an inbox message id`},
		{[]string{"inbox", "show", "--db", db}, exitUsage, "one message id"},
		{[]string{"inbox", "list", "--db", db, "extra"}, exitUsage, "no arguments"},
		{[]string{"inbox", "ack", "--db", db, "1", "9"}, exitFailure, "message 9 is not in the inbox: nothing changed"},
		{[]string{"inbox", "show", "--db", db, "9"}, exitFailure, "message 9 is not in the inbox"},
		{[]string{"inbox", "list", "--db", db + ".missing"}, exitFailure, "no queue at"},
		{[]string{"flush", "--db", db, "--transport", "tcp", "--broker", "127.0.0.1:1", "--subscribe", "cmd/#:5"}, exitUsage, `QoS "5" is not 0, 1 or 2`},
		{[]string{"flush", "--db", db, "--transport", "tcp", "--broker", "127.0.0.1:1", "--subscribe", "cmd/#/x"}, exitUsage, "--subscribe"},
		{[]string{"flush", "--db", db, "--transport", "tcp", "--broker", "127.0.0.1:1", "--subscribe", "a", "--subscribe", "a:2"}, exitUsage, "given twice"},
		{[]string{"flush", "--db", db, "--transport", "tcp", "--broker", "127.0.0.1:1", "--subscribe", "a", "--mqtt-version", "5", "--session-expiry", "0s"}, exitUsage, "--session-expiry"},
		{[]string{"flush", "--db", db, "--transport", "tcp", "--broker", "127.0.0.1:1", "--inbox-hook-attempts", "0"}, exitUsage, "--inbox-hook-attempts"},
	}
	for _, tt := range tests {
		code, _, stderr := runApp(t, "", tt.args...)
		if code != tt.code || !strings.Contains(stderr, tt.msg) || strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
			t.Errorf("%q: exit %d, stderr %q; want exit %d mentioning %q on one line", tt.args, code, stderr, tt.code, tt.msg)
		}
	}
	if msgs := listInbox(t, db); len(msgs) != 2 {
		t.Fatalf("bad input changed the inbox: %d messages", len(msgs))
	}
}
