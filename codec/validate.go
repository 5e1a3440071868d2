package codec

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// These errors report a topic that MQTT allows but strict brokers refuse.
// mosquitto 2.x closes the connection of a client that sends one (its
// mosquitto_validate_utf8 and mosquitto_pub_topic_check), so the encoder
// refuses them too rather than let one reading end a whole window.
var (
	// ErrTopicControlChar is returned for a topic containing a control
	// character, U+0001–U+001F or U+007F–U+009F [MQTT-1.5.4] "SHOULD NOT".
	ErrTopicControlChar = errors.New("topic contains a control character")
	// ErrTopicNonCharacter is returned for a topic containing a Unicode
	// non-character: U+FDD0–U+FDEF, or U+FFFE or U+FFFF in any plane.
	ErrTopicNonCharacter = errors.New("topic contains a Unicode non-character")
	// ErrTopicTooDeep is returned for a topic with more than MaxTopicLevels
	// levels (more than MaxTopicLevels-1 '/' separators).
	ErrTopicTooDeep = errors.New("topic has too many levels")
)

// MaxTopicLevels is the most levels a topic name or filter may have:
// mosquitto refuses more than 200 '/' separators (TOPIC_HIERARCHY_LIMIT).
const MaxTopicLevels = 201

// quoteLimit bounds how much of a topic an error message quotes.
const quoteLimit = 64

// ValidateTopicName checks a PUBLISH topic name. It is the one check of a
// topic name in this module: the encoders, the decoder and the command line
// all call it. A topic name must be non-empty [MQTT-4.7.3-1], at most 65,535
// bytes, well-formed UTF-8 [MQTT-1.5.4-1] without U+0000 [MQTT-1.5.4-2]
// [MQTT-4.7.3-2], free of the wildcards '+' and '#' [MQTT-3.3.2-2], and, as
// strict brokers (mosquitto) enforce, free of control characters
// (U+0001–U+001F, U+007F–U+009F) and non-characters (U+FDD0–U+FDEF, U+xFFFE,
// U+xFFFF) and at most MaxTopicLevels levels deep.
//
// The error wraps one of the ErrTopic* sentinels and quotes at most the
// first 64 bytes of the topic, escaped, so it stays one line.
func ValidateTopicName(topic string) error {
	if plainASCIITopic(topic) {
		return nil
	}
	if err := validateTopicText(topic); err != nil {
		return err
	}
	if i := strings.IndexAny(topic, "+#"); i >= 0 {
		return fmt.Errorf("topic %s: %w (%q at byte %d)", quoteTopic(topic), ErrTopicWildcard, topic[i], i)
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
				return fmt.Errorf("topic filter %s: %w", quoteTopic(filter), ErrTopicFilterInvalid)
			}
		}
		start = i + 1
	}
	return nil
}

// validateTopicText applies the rules names and filters share.
func validateTopicText(topic string) error {
	switch {
	case topic == "":
		return ErrTopicEmpty
	case len(topic) > 0xffff:
		return fmt.Errorf("topic of %d bytes: %w", len(topic), ErrTopicTooLong)
	}
	levels := 1
	for i := 0; i < len(topic); {
		r, size := utf8.DecodeRuneInString(topic[i:])
		var err error
		switch {
		case r == utf8.RuneError && size <= 1:
			return fmt.Errorf("topic %s: %w at byte %d (0x%02x)", quoteTopic(topic), ErrTopicInvalidUTF8, i, topic[i])
		case r == 0:
			err = ErrTopicNullChar
		case r < 0x20 || (r >= 0x7f && r <= 0x9f):
			err = ErrTopicControlChar
		case isNonCharacter(r):
			err = ErrTopicNonCharacter
		case r == '/':
			levels++
		}
		if errors.Is(err, ErrTopicNullChar) {
			return fmt.Errorf("topic %s: %w at byte %d", quoteTopic(topic), err, i)
		}
		if err != nil {
			return fmt.Errorf("topic %s: %w U+%04X at byte %d", quoteTopic(topic), err, r, i)
		}
		i += size
	}
	if levels > MaxTopicLevels {
		return fmt.Errorf("topic %s: %w (%d, at most %d)", quoteTopic(topic), ErrTopicTooDeep, levels, MaxTopicLevels)
	}
	return nil
}

// isNonCharacter reports the 66 Unicode non-characters.
func isNonCharacter(r rune) bool {
	return (r >= 0xfdd0 && r <= 0xfdef) || r&0xfffe == 0xfffe
}

// plainASCIITopic is the fast path for the common topic name: non-empty,
// short, printable ASCII without wildcards, and not too deep. Anything else
// takes the full checks, which also name the rule broken.
func plainASCIITopic(topic string) bool {
	if topic == "" || len(topic) > 0xffff {
		return false
	}
	levels := 1
	for i := 0; i < len(topic); i++ {
		switch c := topic[i]; {
		case c < 0x20, c >= 0x7f, c == '+', c == '#':
			return false
		case c == '/':
			levels++
		}
	}
	return levels <= MaxTopicLevels
}

// quoteTopic quotes at most the first quoteLimit bytes of topic, cut on a
// character boundary, with Go escapes, so a message naming it stays one
// readable line.
func quoteTopic(topic string) string {
	if len(topic) <= quoteLimit {
		return fmt.Sprintf("%q", topic)
	}
	cut := quoteLimit
	for cut > quoteLimit-utf8.UTFMax && !utf8.RuneStart(topic[cut]) {
		cut--
	}
	return fmt.Sprintf("%q… (%d bytes)", topic[:cut], len(topic))
}
