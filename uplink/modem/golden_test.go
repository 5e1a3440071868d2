package modem

import (
	"io"
	"path/filepath"
	"testing"
	"time"

	"github.com/nbiot-uploader/uploader/uplink/testkit"
)

// Ensure the bytes a whole window writes to the UART stay exactly as
// reviewed: CR-terminated commands, the bring-up order of sim7000-at.md
// §12, binary CIPSEND chunks, CIPRXGET reads and the teardown.
// Regenerate with: go test -run TestGoldenWindow -update
func TestGoldenWindow(t *testing.T) {
	e := &echoModem{limit: 1460, notify: true}
	f := startFake(t, e.respond)
	m := New(f.port, Options{QuickSend: true, PollInterval: time.Hour})
	ctx := t.Context()

	steps := []struct {
		name string
		run  func() error
	}{
		{"Sync", func() error { return m.Sync(ctx) }},
		{"SIMStatus", func() error { _, err := m.SIMStatus(ctx); return err }},
		{"CFUN=1", func() error { return m.SetFunctionality(ctx, 1) }},
		{"WaitRegistered", func() error { _, err := m.WaitRegistered(ctx, time.Second); return err }},
		{"StartBearer", func() error { _, err := m.StartBearer(ctx, "nbiot", "", ""); return err }},
	}
	for _, s := range steps {
		if err := s.run(); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
	}
	c, err := m.Dial(ctx, "192.0.2.10", 1883)
	if err != nil {
		t.Fatal(err)
	}
	payload := binaryPattern(3000)
	if _, err := c.Write(payload); err != nil {
		t.Fatal(err)
	}
	if err := c.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(c, make([]byte, len(payload))); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := c.Acked(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := m.SetFunctionality(ctx, 0); err != nil {
		t.Fatal(err)
	}
	if err := m.PowerDown(ctx); err != nil {
		t.Fatal(err)
	}
	m.Close()
	<-f.done

	testkit.Golden(t, filepath.Join("testdata", "window_host_bytes.golden"), f.wire.Bytes())
}
