package modem

import (
	"bytes"
	"encoding/hex"
	"log/slog"
	"strconv"
	"strings"
	"testing"

	"github.com/nbiot-uploader/uploader/uplink/testkit"
)

// Ensure the trace shows the dialog but never a configured secret: not the
// APN password on the AT+CSTT line, not the MQTT password inside CIPSEND
// payload, even when a chunk boundary splits it.
func TestTraceRedactsSecrets(t *testing.T) {
	const apnPassword = "apn-s3cret"
	mqttPassword := []byte("mqtt\x00\x1aPW!")
	var buf testkit.SyncBuffer
	trace := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	opts := Options{Trace: trace, Secrets: [][]byte{[]byte(apnPassword), mqttPassword}, QuickSend: true}

	// A CONNECT-like packet whose password straddles the 8-byte chunks.
	packet := append([]byte{0x10, 0x1e, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04, 0xc2, 0x00, 0x3c, 0x00}, mqttPassword...)
	steps := append([]step{}, bearerSteps...)
	steps[5] = step{cmd: `AT+CSTT="nbiot","user","` + apnPassword + `"`, reply: "\r\nOK\r\n"}
	steps = append(steps,
		step{cmd: dialOK, reply: "\r\nOK\r\n\r\nCONNECT OK\r\n"},
		step{cmd: "AT+CIPSEND?", reply: "\r\n+CIPSEND: 8\r\n\r\nOK\r\n"},
	)
	for left := len(packet); left > 0; left -= 8 {
		n := min(left, 8)
		steps = append(steps, step{cmd: "AT+CIPSEND=" + strconv.Itoa(n), reply: "\r\n> ", data: n, after: "\r\nDATA ACCEPT:" + strconv.Itoa(n) + "\r\n"})
	}
	m, f := newScripted(t, opts, steps...)
	if _, err := m.StartBearer(t.Context(), "nbiot", "user", apnPassword); err != nil {
		t.Fatal(err)
	}
	c, err := m.Dial(t.Context(), "127.0.0.1", 1883)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write(packet); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(f.sent(), packet) {
		t.Fatalf("redaction must not touch the wire: module got %x", f.sent())
	}
	out := buf.String()
	if testing.Verbose() {
		t.Log(out)
	}
	for _, leak := range []string{apnPassword, string(mqttPassword), hex.EncodeToString(mqttPassword),
		hex.EncodeToString(mqttPassword[:4]), hex.EncodeToString(mqttPassword[len(mqttPassword)-4:])} {
		if strings.Contains(out, leak) {
			t.Errorf("trace leaks %q:\n%s", leak, out)
		}
	}
	for _, want := range []string{`AT+CSTT=\"nbiot\",\"user\",\"***\"`, "hex=101e00044d515454", "***", "SHUT OK", "dir=out", "dir=in", " t="} {
		if !strings.Contains(out, want) {
			t.Errorf("trace lacks %q:\n%s", want, out)
		}
	}
}

func TestTracerMask(t *testing.T) {
	tr := newTracer(slog.New(slog.DiscardHandler), [][]byte{[]byte("ab"), nil, []byte("bcd")})
	got := tr.mask([]byte("xabcdxab"))
	want := []bool{false, true, true, true, true, false, true, true}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("mask = %v, want %v", got, want)
		}
	}
	if tr.mask([]byte("nothing")) != nil {
		t.Error("mask of clean data should be nil")
	}
	var nilTracer *tracer
	nilTracer.line("out", "AT")
	nilTracer.data("in", []byte{1})
	nilTracer.prompt()
}

// Ensure the APN password is redacted even when the caller did not list
// it in Options.Secrets.
func TestTraceRedactsAPNPasswordByDefault(t *testing.T) {
	var buf testkit.SyncBuffer
	trace := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	steps := append([]step{}, bearerSteps...)
	m, _ := newScripted(t, Options{Trace: trace, QuickSend: true}, steps...)
	if _, err := m.StartBearer(t.Context(), "nbiot", "user", "pa55"); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	if strings.Contains(out, "pa55") || !strings.Contains(out, `\"user\",\"***\"`) {
		t.Errorf("APN password not redacted:\n%s", out)
	}
}
