package codec

import "fmt"

// Version is an MQTT protocol level, chosen per connection.
type Version byte

// The protocol levels this package speaks. The numbers are the protocol
// level byte of the CONNECT packet.
const (
	V31  Version = 3 // MQTT 3.1, protocol name "MQIsdp"
	V311 Version = 4 // MQTT 3.1.1
	V5   Version = 5 // MQTT 5.0
)

// ParseVersion accepts "3.1", "3.1.1" and "5", and also the protocol level
// numbers "3", "4" and the spelling "5.0".
func ParseVersion(s string) (Version, error) {
	switch s {
	case "3.1", "3":
		return V31, nil
	case "3.1.1", "4":
		return V311, nil
	case "5", "5.0":
		return V5, nil
	}
	return 0, fmt.Errorf("parse MQTT version %q: %w", s, ErrUnsupportedVersion)
}

// String returns "3.1", "3.1.1" or "5", the form ParseVersion accepts.
func (v Version) String() string {
	switch v {
	case V31:
		return "3.1"
	case V311:
		return "3.1.1"
	case V5:
		return "5"
	}
	return fmt.Sprintf("Version(%d)", byte(v))
}

// valid reports whether v is one of the three supported levels.
func (v Version) valid() bool { return v == V31 || v == V311 || v == V5 }

func checkVersion(v Version) error {
	if !v.valid() {
		return fmt.Errorf("protocol level %d: %w", byte(v), ErrUnsupportedVersion)
	}
	return nil
}

// protocolName is the name CONNECT carries for the level: 3.1 predates the
// rename from "MQIsdp" to "MQTT".
func (v Version) protocolName() string {
	if v == V31 {
		return "MQIsdp"
	}
	return "MQTT"
}
