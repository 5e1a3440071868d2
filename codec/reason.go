package codec

import "fmt"

// MQTT 5 reason codes below 0x80 mean success; the spec names them per packet.
var reasonTexts = map[byte]string{
	0x00: "success",
	0x01: "granted QoS 1",
	0x02: "granted QoS 2",
	0x04: "disconnect with will message",
	0x10: "no matching subscribers",
	0x11: "no subscription existed",
	0x18: "continue authentication",
	0x19: "re-authenticate",
	0x80: "unspecified error",
	0x81: "malformed packet",
	0x82: "protocol error",
	0x83: "implementation specific error",
	0x84: "unsupported protocol version",
	0x85: "client identifier not valid",
	0x86: "bad user name or password",
	0x87: "not authorized",
	0x88: "server unavailable",
	0x89: "server busy",
	0x8A: "banned",
	0x8B: "server shutting down",
	0x8C: "bad authentication method",
	0x8D: "keep alive timeout",
	0x8E: "session taken over",
	0x8F: "topic filter invalid",
	0x90: "topic name invalid",
	0x91: "packet identifier in use",
	0x92: "packet identifier not found",
	0x93: "receive maximum exceeded",
	0x94: "topic alias invalid",
	0x95: "packet too large",
	0x96: "message rate too high",
	0x97: "quota exceeded",
	0x98: "administrative action",
	0x99: "payload format invalid",
	0x9A: "retain not supported",
	0x9B: "QoS not supported",
	0x9C: "use another server",
	0x9D: "server moved",
	0x9E: "shared subscriptions not supported",
	0x9F: "connection rate exceeded",
	0xA0: "maximum connect time",
	0xA1: "subscription identifiers not supported",
	0xA2: "wildcard subscriptions not supported",
}

// ReasonCodeText returns the MQTT 5 specification's name for a reason code,
// lower-cased, or "reason code 0xNN" for a code the spec does not define.
func ReasonCodeText(code byte) string {
	if s, ok := reasonTexts[code]; ok {
		return s
	}
	return fmt.Sprintf("reason code 0x%02X", code)
}

// MQTT 3.1 and 3.1.1 CONNACK return codes (MQTT 3.1.1 table 3.1).
var returnCodeTexts = [...]string{
	0: "connection accepted",
	1: "unacceptable protocol version",
	2: "identifier rejected",
	3: "server unavailable",
	4: "bad user name or password",
	5: "not authorized",
}

// returnCodeText names a 3.1/3.1.1 CONNACK return code.
func returnCodeText(code byte) string {
	if int(code) < len(returnCodeTexts) {
		return returnCodeTexts[code]
	}
	return fmt.Sprintf("return code 0x%02X", code)
}
