package modemsim

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"

	"github.com/nbiot-uploader/uploader/uplink/testkit"
)

// mqttPeer is just enough of a broker for window benchmarks: it answers
// CONNECT with CONNACK and QoS 1 PUBLISH with PUBACK, ignoring the rest.
func mqttPeer(tb testing.TB) string {
	tb.Helper()
	ln := testkit.Listen(tb)
	tb.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go servePeer(c)
		}
	}()
	return strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
}

func servePeer(c net.Conn) {
	defer c.Close()
	r := bufio.NewReader(c)
	for {
		header, err := r.ReadByte()
		if err != nil {
			return
		}
		length, shift := 0, 0
		for {
			b, err := r.ReadByte()
			if err != nil {
				return
			}
			length |= int(b&0x7f) << shift
			shift += 7
			if b < 0x80 || shift > 21 {
				break
			}
		}
		body := make([]byte, length)
		if _, err := io.ReadFull(r, body); err != nil {
			return
		}
		switch {
		case header == 0x10:
			_, err = c.Write([]byte{0x20, 2, 0, 0})
		case header&0xf6 == 0x32 && len(body) >= 2:
			// QoS 1: the packet id follows the topic.
			topicLen := int(body[0])<<8 | int(body[1])
			if 2+topicLen+2 <= len(body) {
				_, err = c.Write([]byte{0x40, 2, body[2+topicLen], body[3+topicLen]})
			}
		}
		if err != nil {
			return
		}
	}
}

func mqttString(s string) []byte { return append([]byte{byte(len(s) >> 8), byte(len(s))}, s...) }

func mqttPacket(header byte, body []byte) []byte {
	out := []byte{header}
	n := len(body)
	for {
		b := byte(n & 0x7f)
		n >>= 7
		if n > 0 {
			b |= 0x80
		}
		out = append(out, b)
		if n == 0 {
			break
		}
	}
	return append(out, body...)
}

// originalReading is what the original Python method sent per reading: an
// MQTT 3.1 CONNECT with user and password (36 bytes) and one QoS 0 PUBLISH
// of a 340-byte line on a 30-byte topic.
func originalReading() []byte {
	connect := append(mqttString("MQIsdp"), 3, 0xC2, 0, 60)
	connect = append(connect, mqttString("client")...)
	connect = append(connect, mqttString("user")...)
	connect = append(connect, mqttString("passwd")...)
	publish := append(mqttString("MAPS/IAQ_TW/NBIOT/9C65F9000000"), strings.Repeat("x", 340)...)
	return append(mqttPacket(0x10, connect), mqttPacket(0x30, publish)...)
}

// BenchmarkOriginalMethodReading measures, on the nbiot profile's virtual
// clock, one reading sent the way the original method did (57600 baud, echo
// on, hex input, variable-length CIPSEND, normal send), from radio on to
// radio off. Its fixed 1 s host sleeps are not modelled.
func BenchmarkOriginalMethodReading(b *testing.B) {
	cfg := NBIoT()
	cfg.VirtualClock = true
	cfg.Baud = 57600
	cfg.StartRadioOff = true
	sim, h := startPipe(b, cfg)
	port := mqttPeer(b)
	var hexed strings.Builder
	for _, c := range originalReading() {
		fmt.Fprintf(&hexed, "%02X ", c)
	}
	hexed.WriteString("1A")
	b.ResetTimer()
	for range b.N {
		sim.ResetAccounting()
		h.send("AT+CFUN=1\r")
		h.expectContains("+CPIN: READY\r\n")
		h.send("AT+CEREG?\r")
		h.expectContains("OK\r\n")
		for _, step := range []struct{ line, final string }{
			{"AT+CIPCLOSE", "ERROR"}, {"AT+CIPSENDHEX=1", "OK"}, {`AT+CSTT="nbiot"`, "OK"}, {"AT+CIICR", "OK"},
		} {
			h.send(step.line + "\r")
			h.expectContains("\r\n" + step.final + "\r\n")
		}
		h.send("AT+CIFSR\r")
		h.expectContains(DefaultLocalIP + "\r\n")
		h.send(`AT+CIPSTART="TCP","127.0.0.1","` + port + `"` + "\r")
		h.expectContains("CONNECT OK\r\n")
		h.send("AT+CIPSEND\r")
		h.expectContains("> ")
		h.send(hexed.String())
		h.expectContains("SEND OK\r\n")
		h.send("AT+CIPCLOSE\r")
		h.expectContains("CLOSE OK\r\n")
		h.send("AT+CIPSHUT\r")
		h.expectContains("SHUT OK\r\n")
		h.send("AT+CFUN=0\r")
		h.expectContains("+CPIN: NOT READY\r\n")
	}
	b.StopTimer()
	reportWindow(b, sim.Accounting())
}

// BenchmarkBatchedWindow measures, on the nbiot profile's virtual clock,
// one window that sends 60 QoS 1 records (topic and payload of 20 bytes)
// over one connection in quick-send chunks of up to 1460 bytes and waits
// for every PUBACK, from radio on to radio off.
func BenchmarkBatchedWindow(b *testing.B) {
	const records = 60
	cfg := NBIoT()
	cfg.VirtualClock = true
	cfg.StartRadioOff = true
	sim, h := startPipe(b, cfg)
	port := mqttPeer(b)
	connect := append(mqttString("MQTT"), 4, 0x02, 0, 60)
	stream := mqttPacket(0x10, append(connect, mqttString("site-001")...))
	for i := range records {
		body := append(mqttString("sensors/site-001/t01"), byte(i>>8), byte(i+1))
		stream = append(stream, mqttPacket(0x32, append(body, strings.Repeat("p", 20)...))...)
	}
	wantDown := 4 + 4*records
	h.cmd("ATE0", "ATE0\r\r\nOK\r\n")
	b.ResetTimer()
	for range b.N {
		sim.ResetAccounting()
		h.cmd("AT+CFUN=1", "\r\nOK\r\n\r\n+CPIN: READY\r\n")
		h.cmd("AT+CEREG?", "\r\n+CEREG: 0,1\r\n\r\nOK\r\n")
		h.cmd("AT+CIPSHUT", "\r\nSHUT OK\r\n")
		h.cmd("AT+CIPMUX=0;+CIPRXGET=1;+CIPQSEND=1", "\r\nOK\r\n")
		h.cmd(`AT+CSTT="nbiot"`, "\r\nOK\r\n")
		h.cmd("AT+CIICR", "\r\nOK\r\n")
		h.cmd("AT+CIFSR", "\r\n"+DefaultLocalIP+"\r\n")
		h.cmd(`AT+CIPSTART="TCP","127.0.0.1",`+port, "\r\nOK\r\n")
		h.expect("\r\nCONNECT OK\r\n")
		for rest := stream; len(rest) > 0; {
			n := min(len(rest), DefaultSendLimit)
			h.cmd("AT+CIPSEND="+strconv.Itoa(n), "\r\n> ")
			h.send(string(rest[:n]))
			h.expectContains("DATA ACCEPT:" + strconv.Itoa(n) + "\r\n")
			rest = rest[n:]
		}
		for got := 0; got < wantDown; {
			h.expectContains("+CIPRXGET: 1\r\n")
			h.send("AT+CIPRXGET=2,1460\r")
			got += h.readRxget()
		}
		h.cmd("AT+CIPCLOSE=1", "\r\nCLOSE OK\r\n")
		h.cmd("AT+CIPSHUT", "\r\nSHUT OK\r\n")
		h.cmd("AT+CFUN=0", "\r\nOK\r\n\r\n+CPIN: NOT READY\r\n")
	}
	b.StopTimer()
	reportWindow(b, sim.Accounting())
}

// reportWindow reports the modelled cost of the last window.
func reportWindow(b *testing.B, a Accounting) {
	b.ReportMetric(a.RadioOnSeconds, "radio-s/window")
	b.ReportMetric(float64(a.AirBytesUp+a.AirBytesDown), "air-B/window")
	b.ReportMetric(float64(a.UARTBytesIn+a.UARTBytesOut), "uart-B/window")
	b.ReportMetric(float64(a.ATCommands), "commands/window")
}

// BenchmarkCIPSENDThroughput measures the simulator itself: 1460-byte quick
// sends from host to broker through the module, unpaced.
func BenchmarkCIPSENDThroughput(b *testing.B) {
	_, h := startPipe(b, Fast())
	ln := testkit.Listen(b)
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err == nil {
			_, _ = io.Copy(io.Discard, c)
			_ = c.Close()
		}
	}()
	h.cmd("ATE0", "ATE0\r\r\nOK\r\n")
	h.cmd("AT+CIPQSEND=1", "\r\nOK\r\n")
	h.cmd(`AT+CIPSTART="TCP","127.0.0.1",`+strconv.Itoa(ln.Addr().(*net.TCPAddr).Port), "\r\nOK\r\n")
	h.expect("\r\nCONNECT OK\r\n")
	chunk := strings.Repeat("m", DefaultSendLimit)
	b.SetBytes(DefaultSendLimit)
	b.ResetTimer()
	for range b.N {
		h.cmd("AT+CIPSEND=1460", "\r\n> ")
		h.send(chunk)
		h.expect("\r\nDATA ACCEPT:1460\r\n")
	}
}

// readRxget consumes one AT+CIPRXGET=2 answer and returns its byte count.
func (h *host) readRxget() int {
	h.t.Helper()
	h.expectContains("+CIPRXGET: 2,")
	header := h.expectContains("\r\n")
	var got, left int
	if _, err := fmt.Sscanf(header, "%d,%d\r\n", &got, &left); err != nil {
		h.t.Fatalf("CIPRXGET answer %q: %v", header, err)
	}
	buf, ok := h.waitUntil(func(b []byte) bool { return len(b) >= got+6 })
	if !ok || string(buf[got:got+6]) != "\r\nOK\r\n" {
		h.t.Fatalf("CIPRXGET data %q, want %d bytes and OK", buf, got)
	}
	h.consume(got + 6)
	return got
}
