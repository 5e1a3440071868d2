package modemsim

import (
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
)

func init() {
	for name, h := range map[string]handler{
		"CIPSHUT":    cmdCIPSHUT,
		"CIPMUX":     cmdCIPMUX,
		"CIPRXGET":   cmdCIPRXGET,
		"CIPQSEND":   cmdFlag(func(m *module) *bool { return &m.vol.quickSend }, "+CIPQSEND"),
		"CIPHEAD":    cmdFlag(func(m *module) *bool { return &m.vol.head }, "+CIPHEAD"),
		"CIPSENDHEX": cmdFlag(func(m *module) *bool { return &m.vol.sendHex }, "+CIPSENDHEX"),
		"CSTT":       cmdCSTT,
		"CIICR":      cmdCIICR,
		"CIFSR":      cmdCIFSR,
		"CIFSREX":    cmdCIFSREX,
		"CIPSTATUS":  cmdCIPSTATUS,
		"CIPSTART":   cmdCIPSTART,
		"CIPSEND":    cmdCIPSEND,
		"CIPACK":     cmdCIPACK,
		"CIPCLOSE":   cmdCIPCLOSE,
	} {
		handlers[name] = h
	}
}

// cmdFlag is a 0/1 parameter.
func cmdFlag(field func(*module) *bool, name string) handler {
	return func(m *module, a *answer, c command) string {
		p := field(m)
		switch c.form {
		case formRead:
			v := 0
			if *p {
				v = 1
			}
			a.line(fmt.Sprintf("%s: %d", name, v))
		case formTest:
			a.line(name + ": (0,1)")
		case formSet:
			switch c.arg {
			case "0":
				*p = false
			case "1":
				*p = true
			default:
				return "ERROR"
			}
		default:
			return "ERROR"
		}
		return "OK"
	}
}

func cmdCIPSHUT(m *module, _ *answer, c command) string {
	if c.form != formExec {
		return "ERROR"
	}
	if m.link != nil && m.link.connected {
		m.teardownAir()
	}
	m.dropLink()
	m.rx, m.rxBacklog = nil, nil
	m.vol.ip = stateInitial
	return "SHUT OK"
}

// cmdCIPMUX accepts single-connection mode only; multi mode is not simulated.
func cmdCIPMUX(m *module, a *answer, c command) string {
	switch c.form {
	case formRead:
		a.line("+CIPMUX: 0")
	case formTest:
		a.line("+CIPMUX: (0,1)")
	case formSet:
		if c.arg != "0" || m.vol.ip != stateInitial {
			return "ERROR"
		}
	default:
		return "ERROR"
	}
	return "OK"
}

func cmdCSTT(m *module, a *answer, c command) string {
	switch c.form {
	case formRead:
		a.line(fmt.Sprintf(`+CSTT: "%s","%s","%s"`, m.vol.apn, m.vol.user, m.vol.pass))
		return "OK"
	case formTest:
		return "OK"
	case formExec:
	case formSet:
		args := splitArgs(c.arg)
		if len(args) > 3 || args[0] == "" {
			return "ERROR"
		}
		for _, s := range args {
			if len(s) > 50 {
				return "ERROR"
			}
		}
		if m.vol.ip != stateInitial {
			return "ERROR"
		}
		args = append(args, "", "")
		m.vol.apn, m.vol.user, m.vol.pass = args[0], args[1], args[2]
	default:
		return "ERROR"
	}
	if m.vol.ip != stateInitial {
		return "ERROR"
	}
	m.vol.ip = stateStart
	return "OK"
}

func cmdCIICR(m *module, _ *answer, c command) string {
	if c.form != formExec || m.vol.ip != stateStart {
		return "ERROR"
	}
	if !m.awaitRegistration() {
		m.vol.ip = statePDPDeact
		return "ERROR"
	}
	m.vol.ip = stateConfig
	m.delay(m.cfg.PDPDelay)
	m.vol.ip = stateGPRSAct
	return "OK"
}

// hasAddress reports whether the PDP context is up.
func (m *module) hasAddress() bool {
	switch m.vol.ip {
	case stateGPRSAct, stateStatus, stateConnecting, stateConnected, stateClosed:
		return true
	}
	return false
}

// cmdCIFSR answers the bare address with no OK, as the module does.
func cmdCIFSR(m *module, a *answer, c command) string {
	if c.form != formExec || !m.hasAddress() {
		return "ERROR"
	}
	if m.vol.ip == stateGPRSAct {
		m.vol.ip = stateStatus
	}
	a.line(m.cfg.LocalIP)
	if m.cfg.Variants.CIFSRWithOK {
		return "OK"
	}
	return ""
}

func cmdCIFSREX(m *module, a *answer, c command) string {
	if c.form != formExec || !m.hasAddress() {
		return "ERROR"
	}
	if m.vol.ip == stateGPRSAct {
		m.vol.ip = stateStatus
	}
	a.line("+CIFSREX: " + m.cfg.LocalIP)
	return "OK"
}

// cmdCIPSTATUS puts OK before the state line, as the module does.
func cmdCIPSTATUS(m *module, a *answer, c command) string {
	if c.form != formExec {
		return "ERROR"
	}
	if !m.cfg.Variants.CIPSTATUSOKLast {
		a.line("OK")
	}
	m.urcInside(a)
	a.line("STATE: " + m.vol.ip)
	if m.cfg.Variants.CIPSTATUSOKLast {
		return "OK"
	}
	return ""
}

func cmdCIPSTART(m *module, a *answer, c command) string {
	if c.form == formTest {
		return "OK"
	}
	if c.form != formSet {
		return "ERROR"
	}
	args := splitArgs(c.arg)
	if len(args) != 3 || !strings.EqualFold(args[0], "TCP") || args[1] == "" {
		return "ERROR"
	}
	port, err := strconv.Atoi(args[2])
	if err != nil || port < 1 || port > 65535 {
		return "ERROR"
	}
	var pdp bool
	switch m.vol.ip {
	case stateConnecting, stateConnected:
		if m.cfg.Variants.AlreadyConnectError {
			a.line("ERROR")
		}
		return "ALREADY CONNECT"
	case stateInitial:
		// Single mode brings the bearer up itself with the stored APN,
		// once the attach is done.
		if !m.awaitRegistration() {
			return "ERROR"
		}
		pdp = true
	case stateStatus, stateClosed:
	default:
		return "ERROR"
	}
	m.startConnect(args[1], port, pdp)
	return "OK"
}

func cmdCIPSEND(m *module, a *answer, c command) string {
	fixed := -1
	switch c.form {
	case formRead:
		a.line(fmt.Sprintf("+CIPSEND: %d", m.cfg.SendLimit))
		return "OK"
	case formTest:
		a.line(fmt.Sprintf("+CIPSEND: <length>(1-%d)", m.cfg.SendLimit))
		return "OK"
	case formSet:
		n, err := strconv.Atoi(c.arg)
		if err != nil || n < 1 || n > m.cfg.SendLimit {
			return "ERROR"
		}
		fixed = n
	}
	if m.vol.ip != stateConnected || m.link == nil || !m.link.connected {
		return "ERROR"
	}
	m.data = &dataEntry{fixed: fixed, hex: m.vol.sendHex, nibble: -1}
	m.acct.add(func(a *Accounting) { a.CIPSENDCalls++ })
	if f := &m.faults; f.LatePromptOn > 0 {
		f.sends++
		if f.sends == f.LatePromptOn {
			m.log.Debug("fault: late prompt", "send", f.sends, "delay", LatePromptDelay)
			a.after = append(a.after, func() {
				if err := sleep(m.ctx, LatePromptDelay); err != nil && m.err == nil {
					m.err = err
				}
				m.write([]byte("\r\n> "))
			})
			return ""
		}
	}
	a.raw([]byte("\r\n> "))
	return ""
}

func cmdCIPACK(m *module, a *answer, c command) string {
	if c.form != formExec || m.link == nil {
		return "ERROR"
	}
	tx, acked := m.link.acked(m.clk.now())
	m.acct.add(func(a *Accounting) { a.AckQueries++ })
	a.line(fmt.Sprintf("+CIPACK: %d,%d,%d", tx, acked, tx-acked))
	return "OK"
}

func cmdCIPCLOSE(m *module, _ *answer, c command) string {
	quick := false
	switch {
	case c.form == formExec || (c.form == formSet && c.arg == "0"):
	case c.form == formSet && c.arg == "1":
		quick = true
	default:
		return "ERROR"
	}
	if m.vol.ip != stateConnecting && m.vol.ip != stateConnected {
		return "ERROR"
	}
	wasConnected := m.link != nil && m.link.connected
	if !quick {
		m.flushAir(m.link)
	}
	m.dropLink()
	m.vol.ip = stateClosed
	if wasConnected {
		m.teardownAir()
		if !quick {
			// A slow close waits for the FIN handshake.
			m.delay(m.cfg.RoundTrip)
		}
	}
	return "CLOSE OK"
}

// cmdCIPRXGET handles the receive mode (0 push, 1 manual) and the manual
// reads: 2 binary, 3 hex, 4 how much is buffered.
func cmdCIPRXGET(m *module, a *answer, c command) string {
	switch c.form {
	case formRead:
		v := 0
		if m.vol.rxManual {
			v = 1
		}
		a.line(fmt.Sprintf("+CIPRXGET: %d", v))
		return "OK"
	case formTest:
		a.line("+CIPRXGET: (0-4),(1-1460)")
		return "OK"
	case formSet:
	default:
		return "ERROR"
	}
	args := splitArgs(c.arg)
	mode, err := strconv.Atoi(args[0])
	if err != nil {
		return "ERROR"
	}
	switch mode {
	case 0, 1:
		if len(args) != 1 || m.vol.ip == stateConnecting || m.vol.ip == stateConnected {
			return "ERROR"
		}
		m.vol.rxManual = mode == 1
		return "OK"
	case 4:
		if len(args) != 1 || !m.vol.rxManual {
			return "ERROR"
		}
		m.urcInside(a)
		a.line(fmt.Sprintf("+CIPRXGET: 4,%d", len(m.rx)))
		m.rxCmd = 4
		return "OK"
	case 2, 3:
		limit := maxSendLimit
		if mode == 3 {
			limit = maxSendLimit / 2
		}
		if len(args) != 2 || !m.vol.rxManual {
			return "ERROR"
		}
		n, err := strconv.Atoi(args[1])
		if err != nil || n < 1 || n > limit {
			return "ERROR"
		}
		if len(m.rx) == 0 && (m.link == nil || !m.link.connected) {
			return "ERROR"
		}
		m.urcInside(a)
		got := min(n, len(m.rx))
		data := m.rx[:got]
		m.rx = append([]byte(nil), m.rx[got:]...)
		m.refillRx()
		a.line(fmt.Sprintf("+CIPRXGET: %d,%d,%d", mode, got, len(m.rx)))
		m.rxReads++
		m.rxCmd, m.rxPayload = mode, got
		if mode == 3 {
			m.rxPayload = 2 * got
			a.raw([]byte(strings.ToUpper(hex.EncodeToString(data))))
		} else {
			a.raw(data)
		}
		return "OK"
	}
	return "ERROR"
}

// urcInside injects "+CIPRXGET: 1" into an answer while unread data waits,
// when the variant asks for it.
func (m *module) urcInside(a *answer) {
	if m.cfg.Variants.URCInsideAnswers && m.vol.rxManual && len(m.rx) > 0 {
		a.line("+CIPRXGET: 1")
	}
}

// dataEntry is the state after the "> " prompt.
type dataEntry struct {
	fixed   int // bytes wanted; -1 for Ctrl-Z terminated input
	hex     bool
	payload []byte
	nibble  int // pending high nibble in hex mode, -1 if none
	bad     bool
}

const (
	ctrlZ = 0x1A
	esc   = 0x1B
)

// dataByte consumes one byte typed after the prompt.
func (m *module) dataByte(c byte) {
	d := m.data
	if m.vol.echo {
		m.echoPending = append(m.echoPending, c)
	}
	if c == esc && (d.fixed < 0 || d.hex) {
		// ESC cancels the send; the module prints nothing.
		m.data = nil
		return
	}
	if !d.hex {
		if d.fixed < 0 && c == ctrlZ {
			m.finishSend()
			return
		}
		m.appendPayload(c)
		return
	}
	switch {
	case d.fixed < 0 && c == ctrlZ:
		m.finishSend()
	case c == ' ' || c == '\r' || c == '\n' || c == '\t':
		if d.nibble >= 0 {
			d.bad, d.nibble = true, -1
		}
	default:
		v, ok := hexValue(c)
		if !ok {
			d.bad, d.nibble = true, -1
			return
		}
		if d.nibble < 0 {
			d.nibble = int(v)
			return
		}
		b := byte(d.nibble<<4) | v
		d.nibble = -1
		if d.fixed < 0 && b == ctrlZ {
			// The original method ends hex input with the text "1A".
			m.finishSend()
			return
		}
		m.appendPayload(b)
	}
}

func (m *module) appendPayload(b byte) {
	d := m.data
	d.payload = append(d.payload, b)
	switch {
	case d.fixed >= 0 && len(d.payload) == d.fixed:
		m.finishSend()
	case d.fixed < 0 && len(d.payload) > m.cfg.SendLimit:
		m.data = nil
		m.write(frame("ERROR"))
	}
}

func (m *module) finishSend() {
	d := m.data
	m.data = nil
	if d.bad || d.nibble >= 0 || len(d.payload) == 0 {
		m.write(frame("ERROR"))
		return
	}
	m.send(d.payload)
}
