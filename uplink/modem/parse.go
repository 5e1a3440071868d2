package modem

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// cmeTexts maps the verbose (AT+CMEE=2) texts this flow can meet to their
// numeric codes, so callers can test Code whatever the CMEE setting.
var cmeTexts = map[string]int{
	"operation not allowed":      3,
	"operation not supported":    4,
	"sim not inserted":           10,
	"sim pin required":           11,
	"sim puk required":           12,
	"sim failure":                13,
	"sim busy":                   14,
	"sim wrong":                  15,
	"no network service":         30,
	"network timeout":            31,
	"unspecified gprs error":     148,
	"pdp authentication failure": 149,
	"dns resolve failed":         160,
	"socket open failed":         161,
	"gprs is not attached":       180,
	"tcpip stack is busy":        181,
	"cfun state is 0 or 4":       797,
}

// cmeSIMBusy is the code AT+CPIN? returns while the SIM initialises.
const cmeSIMBusy = 14

// parseError turns a final error line into an error, or returns nil when
// the line is not an error final.
func parseError(line string) error {
	if line == "ERROR" {
		return ErrCommand
	}
	for _, prefix := range []string{"+CME ERROR:", "+CMS ERROR:"} {
		rest, ok := strings.CutPrefix(line, prefix)
		if !ok {
			continue
		}
		rest = strings.TrimSpace(rest)
		if code, err := strconv.Atoi(rest); err == nil {
			return &CMEError{Code: code}
		}
		code, known := cmeTexts[strings.ToLower(rest)]
		if !known {
			code = -1
		}
		return &CMEError{Code: code, Text: rest}
	}
	return nil
}

// genericFinal reports whether line ends the answer of an arbitrary
// command: the V.25ter finals plus the CIP stack's own.
func genericFinal(line string) bool {
	switch line {
	case "OK", "ERROR", "SHUT OK", "CLOSE OK", "SEND OK", "SEND FAIL",
		"CONNECT OK", "CONNECT FAIL", "ALREADY CONNECT", "NORMAL POWER DOWN", "NO CARRIER":
		return true
	}
	if _, ok := parseDataAccept(line); ok {
		return true
	}
	return strings.HasPrefix(line, "+CME ERROR:") || strings.HasPrefix(line, "+CMS ERROR:")
}

// parseDataAccept reads "DATA ACCEPT:<n>" (or "DATA ACCEPT: <n>").
func parseDataAccept(line string) (int, bool) {
	rest, ok := strings.CutPrefix(line, "DATA ACCEPT:")
	if !ok {
		return 0, false
	}
	n, err := strconv.Atoi(strings.TrimSpace(rest))
	if err != nil || n < 0 {
		return 0, false
	}
	return n, true
}

// infoInts parses "<prefix> a,b,c" into integers, tolerating spaces.
func infoInts(line, prefix string, want int) ([]int, bool) {
	rest, ok := strings.CutPrefix(line, prefix)
	if !ok {
		return nil, false
	}
	fields := splitFields(rest)
	if len(fields) != want {
		return nil, false
	}
	out := make([]int, want)
	for i, f := range fields {
		n, err := strconv.Atoi(f)
		if err != nil {
			return nil, false
		}
		out[i] = n
	}
	return out, true
}

func parseInt64s(line, prefix string, want int) ([]int64, bool) {
	rest, ok := strings.CutPrefix(line, prefix)
	if !ok {
		return nil, false
	}
	fields := splitFields(rest)
	if len(fields) != want {
		return nil, false
	}
	out := make([]int64, want)
	for i, f := range fields {
		n, err := strconv.ParseInt(f, 10, 64)
		if err != nil || n < 0 {
			return nil, false
		}
		out[i] = n
	}
	return out, true
}

// regReading is one +CEREG/+CGREG read-form answer.
type regReading struct {
	stat int
	act  int // -1 when the answer carries no access technology
}

// parseRegistration reads the read form "+CEREG: <n>,<stat>[,...,<AcT>]".
// The URC form "+CEREG: <stat>[,"<tac>",...]" has no <n>; it is told apart
// by its second field, which is then absent or a quoted string.
func parseRegistration(line, prefix string) (regReading, bool) {
	rest, ok := strings.CutPrefix(line, prefix)
	if !ok {
		return regReading{}, false
	}
	fields := splitFields(rest)
	if len(fields) < 2 {
		return regReading{}, false
	}
	if _, err := strconv.Atoi(fields[0]); err != nil {
		return regReading{}, false
	}
	stat, err := strconv.Atoi(fields[1])
	if err != nil {
		return regReading{}, false
	}
	r := regReading{stat: stat, act: -1}
	// The location fields are quoted hex; the access technology is the
	// first bare number after them.
	for _, f := range fields[2:] {
		if f == "" || strings.HasPrefix(f, `"`) {
			continue
		}
		if act, err := strconv.Atoi(f); err == nil {
			r.act = act
		}
		break
	}
	return r, true
}

// technologyName maps an <AcT> value to Registration.Technology.
func technologyName(act int) string {
	switch act {
	case 0, 1, 3:
		return "GSM"
	case 7:
		return "CAT-M"
	case 9:
		return "NB-IoT"
	}
	return ""
}

// parseCOPS reads `+COPS: <mode>[,<format>,"<oper>"[,<act>]]`.
func parseCOPS(line string) (operator string, act int, ok bool) {
	rest, found := strings.CutPrefix(line, "+COPS:")
	if !found {
		return "", -1, false
	}
	fields := splitFields(rest)
	act = -1
	if len(fields) >= 3 {
		operator = strings.Trim(fields[2], `"`)
	}
	if len(fields) >= 4 {
		if n, err := strconv.Atoi(fields[3]); err == nil {
			act = n
		}
	}
	return operator, act, true
}

// parseIPLine accepts the bare address AT+CIFSR answers with.
func parseIPLine(line string) (string, bool) {
	addr, err := netip.ParseAddr(strings.TrimSpace(line))
	if err != nil {
		return "", false
	}
	return addr.String(), true
}

// quoteArg renders a string parameter of an AT command. The AT parser has
// no escapes, so a quote or a line break cannot be sent at all.
func quoteArg(name, s string, maxLen int) (string, error) {
	if len(s) > maxLen {
		return "", fmt.Errorf("%w: %s longer than %d bytes", ErrInvalidArgument, name, maxLen)
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == '"' || c < 0x20 || c == 0x7f {
			return "", fmt.Errorf("%w: %s contains a quote or control character", ErrInvalidArgument, name)
		}
	}
	return `"` + s + `"`, nil
}

// commandName is the step name of a command line: the command without its
// parameters, which may carry secrets ("AT+CSTT", "AT+CIPSEND", "AT+CPIN?").
func commandName(cmd string) string {
	cmd = strings.TrimSpace(cmd)
	if i := strings.IndexAny(cmd, "=;"); i >= 0 {
		return cmd[:i]
	}
	return cmd
}
