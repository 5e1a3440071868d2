package uplink_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"github.com/nbiot-uploader/uploader/codec"
)

// originalMethod replays ../shared/reference/original-method.md, the
// Python script this project replaces, through a serial port: per reading
// one full bearer and TCP set-up, an MQTT 3.1 CONNECT with fixed fields and
// one QoS 0 PUBLISH typed as hex pairs with a space after each (three UART
// characters per byte), variable-length AT+CIPSEND ended by "1A", normal
// send (SEND OK waits for the server's TCP ACK), then AT+CIPCLOSE. No
// answer is checked; here we wait for each answer instead of the script's
// fixed one-second sleeps, so the simulator's clock sees the same commands
// without the sleeps (originalSleepsPerReading counts them separately).
type originalMethod struct {
	port   io.ReadWriteCloser
	broker string
	buf    []byte
}

// The script slept one second after each of its eight commands.
const originalSleepsPerReading = 8 * time.Second

// originalConnect is the script's hard-coded CONNECT: MQTT 3.1 ("MQIsdp"),
// flags 0xC2 (user, password, clean session), keepalive 60, a 6-byte client
// id, a 4-byte user name and a 6-byte password: 36 bytes.
func originalConnect() []byte {
	b, err := codec.AppendConnect(nil, &codec.Connect{
		Version: codec.V31, ClientID: "LinkIt", CleanStart: true, KeepAlive: 60,
		HasUsername: true, Username: "maps", HasPassword: true, Password: []byte("iaq_tw"),
	})
	if err != nil {
		panic(err)
	}
	return b
}

func hexSpaced(b []byte) []byte {
	const digits = "0123456789ABCDEF"
	out := make([]byte, 0, 3*len(b)+2)
	for _, c := range b {
		out = append(out, digits[c>>4], digits[c&15], ' ')
	}
	return append(out, '1', 'A')
}

func (o *originalMethod) send(line string) error {
	_, err := o.port.Write([]byte(line + "\r"))
	return err
}

// expect reads until one of the tokens has arrived (or the deadline).
func (o *originalMethod) expect(timeout time.Duration, tokens ...string) (string, error) {
	deadline := time.Now().Add(timeout)
	chunk := make([]byte, 4096)
	for {
		for _, tok := range tokens {
			if i := bytes.Index(o.buf, []byte(tok)); i >= 0 {
				o.buf = o.buf[i+len(tok):]
				return tok, nil
			}
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("no %q within %s (got %q)", tokens, timeout, o.buf)
		}
		n, err := o.port.Read(chunk)
		if err != nil && !errors.Is(err, io.EOF) {
			return "", err
		}
		o.buf = append(o.buf, chunk[:n]...)
		if len(o.buf) > 1<<16 {
			o.buf = o.buf[len(o.buf)-4096:]
		}
	}
}

func (o *originalMethod) command(line string, timeout time.Duration, tokens ...string) error {
	if err := o.send(line); err != nil {
		return err
	}
	_, err := o.expect(timeout, tokens...)
	return err
}

// sendReading sends one reading the original way. The radio is switched on
// first and off after the close, so the simulator counts the radio as on
// from the first command to the close, as original-method.md asks.
func (o *originalMethod) sendReading(ctx context.Context, topic string, payload []byte) error {
	const t = 30 * time.Second
	if err := o.command("AT+CFUN=1", t, "OK"); err != nil {
		return fmt.Errorf("CFUN=1: %w", err)
	}
	for {
		if err := o.send("AT+CEREG?"); err != nil {
			return err
		}
		tok, err := o.expect(t, "+CEREG: 0,1", "+CEREG: 0,5", "+CEREG: 0,2", "+CEREG: 0,0")
		if err != nil {
			return fmt.Errorf("CEREG: %w", err)
		}
		if _, err := o.expect(t, "OK"); err != nil {
			return err
		}
		if tok == "+CEREG: 0,1" || tok == "+CEREG: 0,5" {
			break
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	host, port, _ := net.SplitHostPort(o.broker)
	steps := []struct {
		cmd    string
		tokens []string
	}{
		{"AT+CIPCLOSE", []string{"CLOSE OK", "ERROR"}},
		{"AT+CIPSENDHEX=1", []string{"OK", "ERROR"}},
		{`AT+CSTT="nbiot"`, []string{"OK", "ERROR"}},
		{"AT+CIICR", []string{"OK", "ERROR"}},
		{"AT+CIFSR", []string{".", "ERROR"}},
		{fmt.Sprintf(`AT+CIPSTART="TCP","%s","%s"`, host, port), []string{"CONNECT OK", "CONNECT FAIL", "ALREADY CONNECT"}},
		{"AT+CIPSEND", []string{"> "}},
	}
	for _, s := range steps {
		if err := o.command(s.cmd, t, s.tokens...); err != nil {
			return fmt.Errorf("%s: %w", s.cmd, err)
		}
	}
	pkt := originalConnect()
	var err error
	pkt, err = codec.AppendPublish(pkt, codec.V31, &codec.Publish{Topic: topic, Payload: payload})
	if err != nil {
		return err
	}
	if _, err := o.port.Write(hexSpaced(pkt)); err != nil {
		return err
	}
	if _, err := o.expect(t, "SEND OK"); err != nil {
		return fmt.Errorf("send: %w", err)
	}
	if err := o.command("AT+CIPCLOSE", t, "CLOSE OK", "ERROR"); err != nil {
		return err
	}
	// Not in the script (it left the radio and the bearer up): shutting the
	// bearer and the radio lets the next reading start from the same state,
	// and marks where the simulator stops counting radio-on time.
	if err := o.command("AT+CIPSHUT", t, "SHUT OK", "ERROR"); err != nil {
		return err
	}
	return o.command("AT+CFUN=0", t, "OK")
}

// originalPayload is a reading in the script's pipe-separated format
// (about 340 bytes).
func originalPayload(i int) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "|gps_lat=25.1933|gps_lon=121.4587|gps_num=100|s_t0=%.2f|s_h0=%.2f|s_d0=%d|s_d1=%d|s_d2=%d", 25+float64(i%7)/10, 60+float64(i%11)/10, 10+i%9, 14+i%5, 18+i%3)
	fmt.Fprintf(&b, "|s_g8=%d|s_gg=%d|s_s0=%d|app=IAQ_TW|ver_app=0.0.1|ver_format=3|FAKE_GPS=1|device=LinkIt7688|device_id=9C65F9A1B2C3|date=2026-11-25|time=06:%02d:%02d|tick=%d.%03d|fmt_opt=0", 400+i%50, 30+i%20, 55+i%10, i%60, (i*7)%60, 1000+i, i%1000)
	for b.Len() < 340 {
		b.WriteString("|pad=0")
	}
	return []byte(b.String()[:340])
}

const originalTopic = "MAPS/IAQ_TW/NBIOT/9C65F9A1B2C3"
