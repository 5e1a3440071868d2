package uplink

import (
	"crypto/sha256"
	"encoding/base32"
	"strings"
)

// maxClientID is MQTT 3.1's limit on client ids, which brokers of every
// version accept.
const maxClientID = 23

// DefaultClientID is the client id of a site that sets none: distinct for
// distinct boards and stable across reboots and re-flashes of the binary.
//
// With a machine id (/etc/machine-id, unique per installation) it is
// "u-" + up to 12 characters of the hostname + "-" + 8 characters of a hash
// of the machine id: boards that share a hostname ("raspberrypi") still
// differ, and the machine id itself is never disclosed. Without one, the
// hostname alone names the board: "uploader-" + hostname when that fits
// 23 bytes, else the short form with a hash of the whole hostname, so
// hostnames that share a long prefix (rpi-3b-b827eb...) do not collapse.
func DefaultClientID(hostname, machineID string) string {
	host := clientIDChars(hostname)
	if host == "" {
		host = "site"
	}
	machineID = strings.TrimSpace(machineID)
	if machineID == "" {
		if id := "uploader-" + host; len(id) <= maxClientID {
			return id
		}
		return shortClientID(host, hostname)
	}
	return shortClientID(host, "machine-id\x00"+machineID)
}

// shortClientID is "u-" + a prefix of host + "-" + a hash of key: 23
// bytes at most.
func shortClientID(host, key string) string {
	sum := sha256.Sum256([]byte("uploader client id\x00" + key))
	hash := strings.ToLower(base32.StdEncoding.EncodeToString(sum[:])[:8])
	prefix := host[:min(len(host), maxClientID-len("u-")-len("-")-len(hash))]
	return "u-" + strings.TrimRight(prefix, "-.") + "-" + hash
}

// clientIDChars keeps the characters every broker accepts in a client id
// (MQTT 3.1.1 guarantees 0-9, a-z, A-Z) plus '-' and '.', so a hostname
// cannot bring anything else into it.
func clientIDChars(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '.':
			b.WriteRune(r)
		}
	}
	return b.String()
}
