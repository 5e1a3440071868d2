package codec

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// ValidateTopicName checks a PUBLISH topic name: non-empty [MQTT-4.7.3-1], at
// most 65,535 bytes, well-formed UTF-8 [MQTT-1.5.4-1] without U+0000
// [MQTT-1.5.4-2] [MQTT-4.7.3-2], and free of the wildcards '+' and '#'
// [MQTT-3.3.2-2].
func ValidateTopicName(topic string) error {
	if plainASCIITopic(topic) {
		return nil
	}
	if err := validateTopicText(topic); err != nil {
		return err
	}
	if strings.ContainsAny(topic, "+#") {
		return fmt.Errorf("topic %q: %w", topic, ErrTopicWildcard)
	}
	return nil
}

// ValidateTopicFilter checks a SUBSCRIBE or UNSUBSCRIBE topic filter: the
// text rules of ValidateTopicName, and wildcards that each fill a whole level,
// with '#' only as the last level [MQTT-4.7.1-1] [MQTT-4.7.1-2].
func ValidateTopicFilter(filter string) error {
	if err := validateTopicText(filter); err != nil {
		return err
	}
	start := 0
	for i := 0; i <= len(filter); i++ {
		if i < len(filter) && filter[i] != '/' {
			continue
		}
		level := filter[start:i]
		if strings.ContainsAny(level, "+#") {
			switch {
			case level == "+":
			case level == "#" && i == len(filter):
			default:
				return fmt.Errorf("topic filter %q: %w", filter, ErrTopicFilterInvalid)
			}
		}
		start = i + 1
	}
	return nil
}

func validateTopicText(topic string) error {
	switch {
	case topic == "":
		return ErrTopicEmpty
	case len(topic) > 0xffff:
		return fmt.Errorf("topic of %d bytes: %w", len(topic), ErrTopicTooLong)
	case !utf8.ValidString(topic):
		return fmt.Errorf("topic %q: %w", topic, ErrTopicInvalidUTF8)
	case strings.IndexByte(topic, 0) >= 0:
		return fmt.Errorf("topic %q: %w", topic, ErrTopicNullChar)
	}
	return nil
}

// plainASCIITopic is the fast path for the common topic: non-empty, short,
// ASCII, and free of U+0000 and wildcards. Anything else takes the full
// checks, which also name the rule broken.
func plainASCIITopic(topic string) bool {
	if topic == "" || len(topic) > 0xffff {
		return false
	}
	for i := 0; i < len(topic); i++ {
		switch c := topic[i]; {
		case c >= 0x80, c == 0, c == '+', c == '#':
			return false
		}
	}
	return true
}
