package e2e

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nbiot-uploader/uploader/codec"
)

// publishAsOperator publishes one message as another client would
// (mosquitto_pub -q QOS): MQTT 3.1.1, clean session, and waits for the
// broker to take it (PUBACK, or PUBREC/PUBREL/PUBCOMP).
func publishAsOperator(t *testing.T, addr, topic, payload string, qos byte) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("operator: dial %s: %v", addr, err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	dec := codec.NewDecoder(conn, codec.V311, 1<<20)
	next := func(want codec.PacketType) {
		t.Helper()
		p, err := dec.Next()
		if err != nil || p.Type != want {
			t.Fatalf("operator: want %v, got %v, %v", want, p, err)
		}
	}
	pkt, _ := codec.AppendConnect(nil, &codec.Connect{Version: codec.V311, ClientID: fmt.Sprintf("e2e-operator-%d", os.Getpid()),
		CleanStart: true, HasUsername: true, Username: brokerUser, HasPassword: true, Password: []byte(brokerPassword)})
	pkt, err = codec.AppendPublish(pkt, codec.V311, &codec.Publish{Topic: topic, Payload: []byte(payload), QoS: qos, PacketID: 1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Write(pkt); err != nil {
		t.Fatalf("operator: %v", err)
	}
	next(codec.TypeConnack)
	switch qos {
	case 1:
		next(codec.TypePuback)
	case 2:
		next(codec.TypePubrec)
		rel, _ := codec.AppendAck(nil, codec.V311, codec.TypePubrel, 1, 0)
		if _, err := conn.Write(rel); err != nil {
			t.Fatalf("operator: %v", err)
		}
		next(codec.TypePubcomp)
	}
	disc, _ := codec.AppendDisconnect(nil, codec.V311, &codec.Disconnect{})
	_, _ = conn.Write(disc)
}

type inboxEntry struct {
	ID           uint64 `json:"id"`
	Topic        string `json:"topic"`
	QoS          byte   `json:"qos"`
	Payload      string `json:"payload"`
	HookAttempts int    `json:"hook_attempts"`
	LastError    string `json:"last_error"`
}

func (s *scenario) inboxList() []inboxEntry {
	s.t.Helper()
	r := runUploader(s.t, processTimeout, "", nil, "inbox", "list", "--db", s.db, "--json", "--log-level", "warn")
	if r.code != 0 {
		s.t.Fatalf("inbox list: %s", r)
	}
	var out []inboxEntry
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
		s.t.Fatalf("inbox list --json: %v\n%s", err, r.stdout)
	}
	return out
}

// TestDownlinkInbox: the real binary, as separate processes, through the
// simulated modem, against mochi and mosquitto, MQTT 3.1.1 and 5. A first
// window subscribes; an operator publishes a QoS 1 and a QoS 2 message
// while the site sleeps; the next window (with nothing queued) stores both
// in the inbox, and its hook fails, so both stay; the window after that
// runs a working hook, which gets each payload on stdin and the topic in
// its environment, and the inbox is empty.
func TestDownlinkInbox(t *testing.T) {
	requireE2E(t)
	brokers := []struct {
		name  string
		start func(*testing.T) broker
	}{
		{"mochi", func(t *testing.T) broker { return startMochi(t) }},
		{"mosquitto", func(t *testing.T) broker { return startMosquitto(t) }},
	}
	for _, b := range brokers {
		for _, version := range []string{"3.1.1", "5"} {
			t.Run(b.name+" "+version, func(t *testing.T) {
				brk := b.start(t)
				s := newScenario(t, brk, version)
				sim := startSimulator(t, "")
				cmdTopic := "cmd/" + s.clientID
				handled := filepath.Join(t.TempDir(), "handled")
				if err := os.Mkdir(handled, 0o700); err != nil {
					t.Fatal(err)
				}
				sub := []string{"--subscribe", cmdTopic + "/#:2", "--downlink-wait", "10s"}
				if r := runUploader(t, processTimeout, "first reading", nil, s.enqueueArgs("--topic", s.prefix+"/t", "--qos", "1", "-")...); r.code != 0 {
					t.Fatalf("enqueue: %s", r)
				}
				if r := s.flush(sim.path, sub...); r.code != 0 {
					t.Fatalf("first window: %s", r)
				}

				publishAsOperator(t, brk.Addr(), cmdTopic+"/config", `{"interval":300}`, 1)
				publishAsOperator(t, brk.Addr(), cmdTopic+"/resend", "since=2026-12-01", 2)

				failing := slices.Concat(sub, []string{"--inbox-hook", "cat >/dev/null; echo not today >&2; exit 4"})
				r := s.flush(sim.path, failing...)
				if r.code != 0 || !strings.Contains(r.stdout+r.stderr, "2 downlink messages") {
					t.Fatalf("second window: want 2 downlink messages: %s", r)
				}
				s.checkRadioOff(sim.path)
				inbox := s.inboxList()
				if len(inbox) != 2 {
					t.Fatalf("inbox after the second window: %+v", inbox)
				}
				for _, m := range inbox {
					if m.HookAttempts != 1 || !strings.Contains(m.LastError, "exit status 4") {
						t.Errorf("message %d after a failing hook: %+v", m.ID, m)
					}
				}

				working := slices.Concat(sub, []string{"--inbox-hook",
					`cat > "` + handled + `/$(basename "$UPLOADER_INBOX_TOPIC")-q$UPLOADER_INBOX_QOS-a$UPLOADER_INBOX_ATTEMPT"`})
				if r := s.flush(sim.path, working...); r.code != 0 || !strings.Contains(r.stdout+r.stderr, "2 handled") {
					t.Fatalf("third window: want the hook to handle 2 messages: %s", r)
				}
				if inbox := s.inboxList(); len(inbox) != 0 {
					t.Fatalf("inbox after the working hook: %+v", inbox)
				}
				want := map[string]string{"config-q1-a2": `{"interval":300}`, "resend-q2-a2": "since=2026-12-01"}
				entries, _ := os.ReadDir(handled)
				if len(entries) != len(want) {
					t.Fatalf("the hook wrote %d files, want %d", len(entries), len(want))
				}
				for name, payload := range want {
					got, err := os.ReadFile(filepath.Join(handled, name))
					if err != nil || string(got) != payload {
						t.Errorf("hook output %s = %q, %v; want %q", name, got, err, payload)
					}
				}
			})
		}
	}
}
