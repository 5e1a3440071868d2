//go:build !board

package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nbiot-uploader/uploader/uplink/pack"
)

func writePack(t *testing.T, clientID string, rs []pack.Reading) (string, []byte) {
	t.Helper()
	var e pack.Encoder
	b, err := e.Encode(nil, clientID, rs, pack.Deflate)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "p.upak")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path, b
}

func TestUnpack(t *testing.T) {
	t0 := time.Date(2026, 12, 5, 9, 0, 0, 123e6, time.UTC)
	rs := []pack.Reading{
		{Seq: 7, Time: t0, Topic: "sites/1/pm25", QoS: 1, Payload: []byte(`{"v":12.4}`)},
		{Seq: 9, Time: t0.Add(time.Minute), Topic: "sites/1/raw", Payload: []byte{0xff, 0x00, 0x01}},
	}
	path, b := writePack(t, "site-1", rs)
	want := `{"client_id":"site-1","seq":7,"time":"2026-12-05T09:00:00.123Z","topic":"sites/1/pm25","qos":1,"retain":false,"payload":"{\"v\":12.4}"}` + "\n" +
		`{"client_id":"site-1","seq":9,"time":"2026-12-05T09:01:00.123Z","topic":"sites/1/raw","qos":0,"retain":false,"payload_base64":"/wAB"}` + "\n"
	for name, args := range map[string][]string{"file": {"unpack", path}, "stdin": {"unpack"}} {
		code, out, stderr := runApp(t, string(b), args...)
		if code != 0 || out != want {
			t.Errorf("%s: exit %d, stdout\n%s\nstderr %q; want\n%s", name, code, out, stderr, want)
		}
	}
	// Two files: one line per reading of each.
	code, out, _ := runApp(t, "", "unpack", path, path)
	if code != 0 || out != want+want {
		t.Errorf("two files: exit %d, %d lines", code, strings.Count(out, "\n"))
	}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var v map[string]any
		if err := json.Unmarshal([]byte(line), &v); err != nil {
			t.Fatalf("line %q is not JSON: %v", line, err)
		}
	}
}

// A damaged pack is rejected whole: exit 2, one line naming the defect,
// and nothing printed — not even the readings of a good pack before it.
func TestUnpackRejectsDamagedPacks(t *testing.T) {
	rs := []pack.Reading{{Seq: 1, Time: time.Unix(0, 0), Topic: "t", Payload: []byte("x")}}
	good, b := writePack(t, "s", rs)
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	flipped := append([]byte(nil), b...)
	flipped[12] ^= 1
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"truncated", []string{good, write("cut", b[:len(b)-3])}, "corrupt pack: CRC-32"},
		{"flipped", []string{write("flip", flipped)}, "corrupt pack: CRC-32"},
		{"not a pack", []string{write("text", []byte("hello, world, not a pack"))}, `magic "hell"`},
		{"empty", []string{write("empty", nil)}, "shorter than"},
		{"missing file", []string{filepath.Join(dir, "nope")}, "no such file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, stderr := runApp(t, "", append([]string{"unpack"}, tt.args...)...)
			if code != 2 || out != "" || !strings.Contains(stderr, tt.want) || strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
				t.Fatalf("exit %d, stdout %q, stderr %q; want exit 2, nothing printed, one line naming %q", code, out, stderr, tt.want)
			}
		})
	}
}
