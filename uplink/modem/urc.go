package modem

import "strings"

// urcPrefixes are unsolicited result codes that carry no answer to any
// command this driver sends; they are counted and otherwise ignored unless
// handled in Modem.handleURC.
var urcPrefixes = []string{
	"+CFUN:", "+CPIN:", "DST:", "*PSUTTZ:", "+CTZV:", "*PSNWID:", "+CPSMSTATUS:",
	"+APP PDP:", "+CDNSGIP:", "UNDER-VOLTAGE", "OVER-VOLTAGE", "+CEREG:", "+CGREG:",
	"+CREG:", "Call Ready",
}

// Names of the URCs the driver acts on (also the keys of Stats.URCs).
const (
	urcRxData    = "+CIPRXGET: 1"
	urcClosed    = "CLOSED"
	urcPDPDeact  = "+PDP: DEACT"
	urcRDY       = "RDY"
	urcSMSReady  = "SMS Ready"
	urcConnectOK = "CONNECT OK"
)

// classifyURC reports whether line is an unsolicited result code while the
// command cmd is waiting for its answer, and under which name it is
// counted. A line that answers cmd (e.g. "+CPIN: READY" to "AT+CPIN?") is
// not a URC even though the module also sends it unsolicited.
func classifyURC(line, cmd string) (name string, ok bool) {
	switch line {
	case urcClosed, urcPDPDeact, urcRDY, urcSMSReady:
		return line, true
	}
	if strings.HasSuffix(line, ", CLOSED") {
		return urcClosed, true
	}
	if rest, found := strings.CutPrefix(line, "+CIPRXGET:"); found {
		fields := splitFields(rest)
		if fields[0] == "1" && !strings.EqualFold(cmd, "AT+CIPRXGET?") {
			return urcRxData, true
		}
		return "", false
	}
	for _, p := range urcPrefixes {
		if !strings.HasPrefix(line, p) {
			continue
		}
		if answersCommand(line, p, cmd) {
			return "", false
		}
		return strings.TrimSuffix(p, ":"), true
	}
	return "", false
}

// answersCommand reports whether an information line with the given
// prefix is the answer to cmd rather than a URC: "+CEREG: 0,1" answers
// "AT+CEREG?", while "+CEREG: 1" (no <n> field) is always unsolicited.
func answersCommand(line, prefix, cmd string) bool {
	name := strings.TrimSuffix(prefix, ":")
	if !strings.HasPrefix(strings.ToUpper(cmd), "AT"+strings.ToUpper(name)) {
		return false
	}
	switch name {
	case "+CEREG", "+CGREG", "+CREG":
		_, ok := parseRegistration(line, prefix)
		return ok
	}
	return true
}
