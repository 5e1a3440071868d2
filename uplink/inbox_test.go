package uplink_test

import (
	"context"
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
	"github.com/nbiot-uploader/uploader/queue"
	"github.com/nbiot-uploader/uploader/uplink"
	"github.com/nbiot-uploader/uploader/uplink/brokertest"
	"github.com/nbiot-uploader/uploader/uplink/modemsim"
	"github.com/nbiot-uploader/uploader/uplink/modemsim/simtest"
	"github.com/nbiot-uploader/uploader/uplink/session"
)

func inbox(t *testing.T, q *queue.Queue) []queue.InboxMessage {
	t.Helper()
	msgs, err := q.Inbox(0, 0)
	if err != nil {
		t.Fatalf("inbox: %v", err)
	}
	return msgs
}

func publishAll(t *testing.T, b *brokertest.Broker, msgs ...queue.InboxMessage) {
	t.Helper()
	for _, m := range msgs {
		if err := b.Publish(m.Topic, m.Payload, m.QoS, false); err != nil {
			t.Fatal(err)
		}
	}
}

func sameMessages(t *testing.T, got []queue.InboxMessage, want ...queue.InboxMessage) {
	t.Helper()
	key := func(m queue.InboxMessage) string { return fmt.Sprintf("%s|%s|%d", m.Topic, m.Payload, m.QoS) }
	var g, w []string
	for _, m := range got {
		g = append(g, key(m))
	}
	for _, m := range want {
		w = append(w, key(m))
	}
	slices.Sort(g)
	slices.Sort(w)
	if !slices.Equal(g, w) {
		t.Fatalf("inbox holds %q, want %q", g, w)
	}
}

// Ensure messages published while the site was offline, QoS 1 and 2,
// arrive in the next window through the simulated modem and over TCP,
// with and without TLS, for MQTT 3.1.1 and 5; the window counts them in
// its summary and the next status record carries the inbox.
func TestWindowDownlinkCollectsOfflineMessages(t *testing.T) {
	ca := newTestCA(t)
	tlsBroker := startBroker(t, brokertest.Options{TLS: ca.serverConfig(t, "broker.test")})
	plain := startBroker(t, brokertest.Options{Username: testUser, Password: testPassword})
	tests := []struct {
		name      string
		transport uplink.Transport
		v         codec.Version
		tls       bool
	}{
		{"modem 3.1.1", uplink.TransportModem, codec.V311, false},
		{"modem 5", uplink.TransportModem, codec.V5, false},
		{"modem 5 TLS", uplink.TransportModem, codec.V5, true},
		{"tcp 3.1.1 TLS", uplink.TransportTCP, codec.V311, true},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			broker := plain
			if tt.tls {
				broker = tlsBroker
			}
			q, dir := openQueue(t)
			var cfg uplink.Config
			if tt.transport == uplink.TransportModem {
				cfg = modemConfig(simtest.Start(t, modemsim.Fast()), broker.Addr(), dir)
			} else {
				cfg = uplink.Defaults()
				cfg.Transport = uplink.TransportTCP
				cfg.Broker = broker.Addr()
				cfg.Username, cfg.Password = testUser, []byte(testPassword)
			}
			if tt.tls {
				cfg.TLS = uplink.TLSConfig{Enabled: true, CAFile: ca.caFile, CertFile: ca.clientCert, KeyFile: ca.clientKey, ServerName: "broker.test"}
			}
			cfg.ClientID = fmt.Sprintf("site-dl-%d", i)
			cfg.MQTTVersion = tt.v
			cfg.SessionExpiry = time.Hour
			cfg.StatusTopic = "uploader/" + cfg.ClientID + "/status"
			cmd := "cmd/" + cfg.ClientID + "/#"
			cfg.Subscriptions = []codec.Subscription{{Filter: cmd, QoS: 2}}
			enqueueReadings(t, q, 3, 1)
			if sum, err := uplink.RunWindow(context.Background(), cfg, q); err != nil || sum.Acked != 3 {
				t.Fatalf("first window: %+v, %v", sum, err)
			}
			sent := []queue.InboxMessage{
				{Topic: "cmd/" + cfg.ClientID + "/config", Payload: []byte(`{"interval":600}`), QoS: 1},
				{Topic: "cmd/" + cfg.ClientID + "/resend", Payload: []byte("since=2026-12-01"), QoS: 2},
			}
			publishAll(t, broker, sent...)
			// The second window has nothing to send: with subscriptions it
			// connects anyway to collect the downlink.
			sum, err := uplink.RunWindow(context.Background(), cfg, q)
			if err != nil || sum.Outcome != uplink.OutcomeOK {
				t.Fatalf("second window: %+v, %v", sum, err)
			}
			sameMessages(t, inbox(t, q), sent...)
			if sum.DownlinkMessages != 2 || sum.DownlinkBytes != int64(len(sent[0].Topic)+len(sent[0].Payload)+len(sent[1].Topic)+len(sent[1].Payload)) {
				t.Fatalf("summary counts %d downlink messages, %d bytes", sum.DownlinkMessages, sum.DownlinkBytes)
			}
			if !strings.Contains(sum.String(), "2 downlink messages") {
				t.Errorf("summary line %q does not count the downlink", sum.String())
			}
			// The third window's status record reports the inbox and the
			// previous window's downlink.
			if _, err := uplink.RunWindow(context.Background(), cfg, q); err != nil {
				t.Fatal(err)
			}
			var rec uplink.StatusRecord
			for _, m := range broker.Messages() {
				if m.Topic == cfg.StatusTopic {
					_ = json.Unmarshal(m.Payload, &rec)
				}
			}
			if rec.Inbox == nil || rec.Inbox.Messages != 2 || rec.Inbox.Received != 2 || rec.Inbox.LastWindowMessages != 2 {
				t.Fatalf("status record inbox = %+v", rec.Inbox)
			}
			if len(inbox(t, q)) != 2 {
				t.Fatalf("a later window changed the inbox: %d messages", len(inbox(t, q)))
			}
		})
	}
}

// killAfterStore is the window's store; it cuts the connection right after
// the first inbound message is stored, before the PUBACK can go out: a
// window killed between storing and acknowledging.
type killAfterStore struct {
	uplink.QueueStore
	conn   net.Conn
	killed bool
}

func (k *killAfterStore) StoreInbound(m session.Inbound) (session.InboundOutcome, error) {
	out, err := k.QueueStore.StoreInbound(m)
	if !k.killed {
		k.killed = true
		_ = k.conn.Close()
	}
	return out, err
}

// Ensure a window killed between storing a message and acknowledging it
// gets the message again from the broker and the inbox holds one copy.
func TestDownlinkKilledBeforeAckStoresOneCopy(t *testing.T) {
	for _, qos := range []byte{1, 2} {
		t.Run(fmt.Sprintf("QoS %d", qos), func(t *testing.T) {
			broker := startBroker(t, brokertest.Options{})
			q, _ := openQueue(t)
			scfg := session.Config{Version: codec.V311, ClientID: fmt.Sprintf("kill-%d", qos), KeepAlive: 60, ReplyTimeout: 5 * time.Second,
				Downlink: session.DownlinkConfig{Subscriptions: []codec.Subscription{{Filter: "cmd/#", QoS: 2}}, Wait: 10 * time.Second}}
			run := func(store session.Store) (session.Result, error) {
				conn, err := net.Dial("tcp", broker.Addr())
				if err != nil {
					t.Fatal(err)
				}
				defer conn.Close()
				if k, ok := store.(*killAfterStore); ok {
					k.conn = conn
				}
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				defer cancel()
				return session.Run(ctx, conn, store, scfg)
			}
			if _, err := run(uplink.NewQueueStore(q, 0)); err != nil {
				t.Fatal(err)
			}
			msg := queue.InboxMessage{Topic: "cmd/site/config", Payload: []byte("interval=60"), QoS: qos}
			publishAll(t, broker, msg)
			if _, err := run(&killAfterStore{QueueStore: uplink.NewQueueStore(q, 0)}); err == nil {
				t.Fatal("the killed session succeeded")
			}
			sameMessages(t, inbox(t, q), msg)
			res, err := run(uplink.NewQueueStore(q, 0))
			if err != nil {
				t.Fatal(err)
			}
			sameMessages(t, inbox(t, q), msg)
			st, _ := q.InboxStats()
			if res.Downlink.Duplicates != 1 || st.Duplicates != 1 || st.Received != 1 {
				t.Fatalf("redelivery: result %+v, inbox stats %+v", res.Downlink, st)
			}
			if err := q.Check(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// Ensure a full inbox refuses new messages without losing them: the broker
// keeps them, and once the hook has made room a later window collects them.
func TestWindowInboxFullLeavesMessagesWithBroker(t *testing.T) {
	broker := startBroker(t, brokertest.Options{})
	q, dir := openQueue(t)
	cfg := uplink.Defaults()
	cfg.Transport = uplink.TransportTCP
	cfg.Broker = broker.Addr()
	cfg.ClientID = "site-full"
	cfg.Subscriptions = []codec.Subscription{{Filter: "cmd/site-full/#", QoS: 1}}
	cfg.InboxMaxBytes = 100 // two of the messages below
	if _, err := uplink.RunWindow(context.Background(), cfg, q); err != nil {
		t.Fatal(err)
	}
	var sent []queue.InboxMessage
	for i := range 5 {
		sent = append(sent, queue.InboxMessage{Topic: "cmd/site-full/x", Payload: []byte(fmt.Sprintf("%030d", i)), QoS: 1})
	}
	publishAll(t, broker, sent...)
	sum, err := uplink.RunWindow(context.Background(), cfg, q)
	if err != nil || sum.DownlinkMessages != 2 || sum.DownlinkRefused == 0 {
		t.Fatalf("window into a full inbox: %+v, %v", sum, err)
	}
	st, _ := q.InboxStats()
	if st.Bytes > cfg.InboxMaxBytes || st.Refused == 0 {
		t.Fatalf("inbox stats %+v", st)
	}
	// The hook drains the inbox after each window; the broker kept the rest.
	out := filepath.Join(dir, "handled")
	cfg.InboxHook = "cat >> " + out + "; echo >> " + out
	for range 4 {
		if _, err := uplink.RunWindow(context.Background(), cfg, q); err != nil {
			t.Fatal(err)
		}
	}
	data, _ := os.ReadFile(out)
	lines := strings.Fields(string(data))
	slices.Sort(lines)
	var want []string
	for _, m := range sent {
		want = append(want, string(m.Payload))
	}
	if !slices.Equal(lines, want) {
		t.Fatalf("the hook handled %q, want every message once: %q", lines, want)
	}
	if n := len(inbox(t, q)); n != 0 {
		t.Fatalf("inbox still holds %d messages", n)
	}
}

// Ensure the hook gets the payload on stdin and the message's facts in the
// environment, that a message leaves the inbox only when the hook exits 0,
// and that a failing hook is retried once per pass up to the cap, counted.
func TestInboxHookSuccessFailureRetry(t *testing.T) {
	q, dir := openQueue(t)
	for _, m := range []queue.InboxMessage{
		{Topic: "cmd/ok", Payload: []byte("payload-1"), QoS: 1, Retain: true, PacketID: 1},
		{Topic: "cmd/fail", Payload: []byte("payload-2"), QoS: 2, PacketID: 2},
	} {
		if _, _, err := q.PutInbox(m, false, 0); err != nil {
			t.Fatal(err)
		}
	}
	envFile := filepath.Join(dir, "env")
	cfg := uplink.Defaults()
	cfg.InboxHookAttempts = 2
	cfg.InboxHook = `p=$(cat); echo "$UPLOADER_INBOX_ID $UPLOADER_INBOX_TOPIC $UPLOADER_INBOX_QOS $UPLOADER_INBOX_RETAIN $UPLOADER_INBOX_ATTEMPT $p ${UPLOADER_INBOX_RECEIVED_AT:+at}" >> ` + envFile + `; [ "$UPLOADER_INBOX_TOPIC" = cmd/ok ] || exit 3`
	passes := []uplink.InboxHookResult{{OK: 1, Failed: 1}, {Failed: 1}, {Skipped: 1}}
	for i, want := range passes {
		got, err := uplink.RunInboxHook(context.Background(), cfg, q, nil)
		if err != nil || got != want {
			t.Fatalf("pass %d: %+v, %v; want %+v", i+1, got, err, want)
		}
	}
	data, _ := os.ReadFile(envFile)
	wantEnv := "1 cmd/ok 1 1 1 payload-1 at\n2 cmd/fail 2 0 1 payload-2 at\n2 cmd/fail 2 0 2 payload-2 at\n"
	if string(data) != wantEnv {
		t.Fatalf("hook saw\n%s\nwant\n%s", data, wantEnv)
	}
	left := inbox(t, q)
	if len(left) != 1 || left[0].ID != 2 || left[0].Attempts != 2 || !strings.Contains(left[0].LastError, "exit status 3") {
		t.Fatalf("inbox after the passes: %+v", left)
	}
	st, _ := q.InboxStats()
	if st.HookFailures != 2 {
		t.Fatalf("hook failures counted: %d", st.HookFailures)
	}
	// A hook that hangs is killed at its timeout and counts as a failure.
	if _, err := q.AckAllInbox(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := q.PutInbox(queue.InboxMessage{Topic: "cmd/slow", QoS: 1, PacketID: 3}, false, 0); err != nil {
		t.Fatal(err)
	}
	cfg.InboxHook = "sleep 60"
	cfg.InboxHookTimeout = 200 * time.Millisecond
	got, err := uplink.RunInboxHook(context.Background(), cfg, q, nil)
	if err != nil || got.Failed != 1 {
		t.Fatalf("hanging hook: %+v, %v", got, err)
	}
	if left := inbox(t, q); len(left) != 1 || !strings.Contains(left[0].LastError, "killed") {
		t.Fatalf("inbox after a hanging hook: %+v", left)
	}
}
