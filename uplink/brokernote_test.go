package uplink_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nbiot-uploader/uploader/codec"
	"github.com/nbiot-uploader/uploader/uplink"
	"github.com/nbiot-uploader/uploader/uplink/brokertest"
	"github.com/nbiot-uploader/uploader/uplink/testkit"
)

// Ensure a window remembers the CONNACK with which the broker accepted it,
// that the next window for the same broker and login starts from it, that
// a window for another client id, user or MQTT version does not, that a
// refused login forgets it, and that an unreadable note costs nothing but
// the round trip it would save.
func TestWindowRemembersTheBrokersLimits(t *testing.T) {
	broker := startBroker(t, brokertest.Options{
		Username: testUser, Password: testPassword,
		ReceiveMaximum: 7, TopicAliasMaximum: 5,
	})
	q, dir := openQueue(t)
	const known = "broker limits known from its last CONNACK"
	window := func(name string, change func(*uplink.Config)) (logs string, err error) {
		t.Helper()
		enqueueReadings(t, q, 30, 1)
		var buf testkit.SyncBuffer
		cfg := uplink.Defaults()
		cfg.Transport = uplink.TransportTCP
		cfg.Broker = broker.Addr()
		cfg.MQTTVersion = codec.V5
		cfg.ClientID = "site-7"
		cfg.Username, cfg.Password = testUser, []byte(testPassword)
		cfg.LockPath = filepath.Join(dir, "modem.lock")
		cfg.Logger = slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
		if change != nil {
			change(&cfg)
		}
		_, err = uplink.RunWindow(context.Background(), cfg, q)
		if err == nil && depth(t, q) != 0 {
			t.Errorf("%s: records left queued", name)
		}
		return buf.String(), err
	}
	note := func() map[string]any {
		t.Helper()
		data, err := q.Note("broker")
		if err != nil {
			t.Fatalf("read note: %v", err)
		}
		if data == nil {
			return nil
		}
		var m map[string]any
		if err := json.Unmarshal(data, &m); err != nil {
			t.Fatalf("note %q: %v", data, err)
		}
		return m
	}

	logs, err := window("first", nil)
	if err != nil {
		t.Fatalf("first window: %v", err)
	}
	if strings.Contains(logs, known) {
		t.Error("the first window claims to know the broker's limits")
	}
	m := note()
	if m["receive_maximum"] != 7.0 || m["topic_alias_maximum"] != 5.0 {
		t.Errorf("note after the first window = %v, want the CONNACK's limits 7 and 5", m)
	}
	if s, _ := m["for"].(string); strings.Contains(s, testPassword) {
		t.Errorf("the note holds the password: %q", s)
	}

	if logs, err = window("second", nil); err != nil || !strings.Contains(logs, known) {
		t.Errorf("second window (err %v) did not start from the remembered limits; log:\n%s", err, logs)
	}
	// In this order each starts after the window before it, which
	// remembered (or, refused, forgot) its own login's limits.
	for _, tt := range []struct {
		name   string
		change func(*uplink.Config)
	}{
		{"another client id", func(c *uplink.Config) { c.ClientID = "site-8" }},
		{"another MQTT version", func(c *uplink.Config) { c.MQTTVersion = codec.V311 }},
		{"another user name", func(c *uplink.Config) { c.Username = "someone" }},
	} {
		logs, _ := window(tt.name, tt.change)
		if strings.Contains(logs, known) {
			t.Errorf("%s: started from limits remembered for another login", tt.name)
		}
	}
	// The password is not part of the login a note is for (a secret), so
	// a wrong one may start from the note; the broker's refusal then
	// forgets it.
	if _, err := window("site-7 again", nil); err != nil || note() == nil {
		t.Fatalf("site-7 again: %v, note %v", err, note())
	}
	if _, err := window("wrong password", func(c *uplink.Config) { c.Password = []byte("wrong") }); err == nil {
		t.Fatal("a wrong password was accepted")
	}
	if m := note(); m != nil {
		t.Errorf("note after a refused login = %v, want it forgotten", m)
	}

	if err := q.UpdateNote("broker", func([]byte) ([]byte, error) { return []byte("{not json"), nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := window("unreadable note", nil); err != nil {
		t.Errorf("window with an unreadable note: %v", err)
	}
	if m := note(); m["receive_maximum"] != 7.0 {
		t.Errorf("note after the unreadable one = %v, want it replaced", m)
	}
}
