package modemsim

import (
	"fmt"
	"strconv"
	"strings"
)

// Identity strings as a SIM7000E answers them (sim7000-at.md §2.3).
const (
	identATI   = "SIM7000 R1351"
	identCGMR  = "Revision:1351B05SIM7000E"
	identModel = "SIMCOM_SIM7000E"
	identIMEI  = "869951031234567"
	identICCID = "89882280666023088201"
	operator   = "SIMULATED"
)

func itoa(n int) string { return strconv.Itoa(n) }

func init() {
	for name, h := range map[string]handler{
		"E": cmdEcho, "I": cmdIdent, "Z": cmdOK, "&W": cmdOK, "&F": cmdOK, "V": cmdVerbose,
		"CGMR": cmdInfo(identCGMR), "GMR": cmdInfo(identCGMR),
		"CGMM": cmdInfo(identModel), "GMM": cmdInfo(identModel),
		"CGSN": cmdInfo(identIMEI), "GSN": cmdInfo(identIMEI),
		"CCID":     cmdInfo(identICCID),
		"GSV":      cmdGSV,
		"CMEE":     cmdIntSetting(func(m *module) *int { return &m.vol.cmee }, "+CMEE", 0, 2),
		"IPR":      cmdIPR,
		"CPIN":     cmdCPIN,
		"CSQ":      cmdCSQ,
		"CFUN":     cmdCFUN,
		"CREG":     cmdReg("+CREG", func(m *module) *int { return &m.vol.cregN }, 2),
		"CGREG":    cmdReg("+CGREG", func(m *module) *int { return &m.vol.cgregN }, 2),
		"CEREG":    cmdReg("+CEREG", func(m *module) *int { return &m.vol.ceregN }, 4),
		"CGATT":    cmdCGATT,
		"CNMP":     cmdChoice(func(m *module) *int { return &m.saved.cnmp }, "+CNMP", 2, 13, 38, 51),
		"CMNB":     cmdChoice(func(m *module) *int { return &m.saved.cmnb }, "+CMNB", 1, 2, 3),
		"CBANDCFG": cmdCBANDCFG,
		"CPSMS":    cmdCPSMS,
		"CSCLK":    cmdIntSetting(func(m *module) *int { return &m.saved.csclk }, "+CSCLK", 0, 1),
		"CBATCHK":  cmdIntSetting(func(m *module) *int { return &m.vol.batchk }, "+CBATCHK", 0, 1),
		"CLTS":     cmdIntSetting(func(m *module) *int { return &m.vol.clts }, "+CLTS", 0, 1),
		"COPS":     cmdCOPS,
		"CPSI":     cmdCPSI,
		"CBC":      cmdCBC,
		"CPOWD":    cmdCPOWD,
	} {
		handlers[name] = h
	}
}

func cmdOK(*module, *answer, command) string { return "OK" }

func cmdEcho(m *module, _ *answer, c command) string {
	switch {
	case c.form == formExec || c.arg == "0":
		m.vol.echo = false
	case c.arg == "1":
		m.vol.echo = true
	default:
		return "ERROR"
	}
	return "OK"
}

// cmdVerbose accepts only ATV1: numeric result codes are not simulated.
func cmdVerbose(_ *module, _ *answer, c command) string {
	if c.form == formSet && c.arg == "1" {
		return "OK"
	}
	return "ERROR"
}

func cmdIdent(_ *module, a *answer, c command) string {
	if c.form != formExec && c.arg != "0" {
		return "ERROR"
	}
	a.line(identATI)
	return "OK"
}

func cmdInfo(text string) handler {
	return func(_ *module, a *answer, c command) string {
		switch c.form {
		case formExec:
			a.line(text)
		case formTest:
		default:
			return "ERROR"
		}
		return "OK"
	}
}

func cmdGSV(_ *module, a *answer, c command) string {
	if c.form != formExec {
		return "ERROR"
	}
	a.line("SIMCOM_Ltd")
	a.line(identModel)
	a.line(identCGMR)
	return "OK"
}

// cmdIntSetting is a plain integer parameter in [lo, hi].
func cmdIntSetting(field func(*module) *int, name string, lo, hi int) handler {
	return func(m *module, a *answer, c command) string {
		p := field(m)
		switch c.form {
		case formRead:
			a.line(fmt.Sprintf("%s: %d", name, *p))
		case formTest:
			a.line(fmt.Sprintf("%s: (%d-%d)", name, lo, hi))
		case formSet:
			n, err := strconv.Atoi(splitArgs(c.arg)[0])
			if err != nil || n < lo || n > hi {
				return "ERROR"
			}
			*p = n
		default:
			return "ERROR"
		}
		return "OK"
	}
}

// cmdChoice is an integer parameter with a list of allowed values.
func cmdChoice(field func(*module) *int, name string, allowed ...int) handler {
	return func(m *module, a *answer, c command) string {
		p := field(m)
		switch c.form {
		case formRead:
			a.line(fmt.Sprintf("%s: %d", name, *p))
		case formTest:
		case formSet:
			n, err := strconv.Atoi(c.arg)
			if err != nil {
				return "ERROR"
			}
			for _, v := range allowed {
				if v == n {
					*p = n
					return "OK"
				}
			}
			return "ERROR"
		default:
			return "ERROR"
		}
		return "OK"
	}
}

// cmdIPR stores the rate; pacing keeps following Config.Baud because the
// host side of a pseudo-terminal has no rate to follow.
func cmdIPR(m *module, a *answer, c command) string {
	switch c.form {
	case formRead:
		rate := m.saved.ipr
		if m.cfg.Autobaud {
			rate = 0
		}
		a.line(fmt.Sprintf("+IPR: %d", rate))
	case formTest:
	case formSet:
		n, err := strconv.Atoi(c.arg)
		if err != nil || !validRate(n) {
			return "ERROR"
		}
		m.saved.ipr = n
	default:
		return "ERROR"
	}
	return "OK"
}

func cmdCPIN(_ *module, a *answer, c command) string {
	switch c.form {
	case formRead:
		a.line("+CPIN: READY")
	case formTest:
	default:
		return "ERROR"
	}
	return "OK"
}

func cmdCSQ(m *module, a *answer, c command) string {
	switch c.form {
	case formExec:
		if !m.radioOn() {
			a.line("+CSQ: 99,99")
		} else {
			m.urcInside(a)
			a.line(fmt.Sprintf("+CSQ: %d,99", m.csq()))
		}
	case formTest:
		a.line("+CSQ: (0-31,99),(0-7,99)")
	default:
		return "ERROR"
	}
	return "OK"
}

func cmdCFUN(m *module, a *answer, c command) string {
	switch c.form {
	case formRead:
		a.line(fmt.Sprintf("+CFUN: %d", m.vol.cfun))
		return "OK"
	case formTest:
		a.line("+CFUN: (0,1,4-7),(0,1)")
		return "OK"
	case formSet:
	default:
		return "ERROR"
	}
	args := splitArgs(c.arg)
	fun, err := strconv.Atoi(args[0])
	if err != nil || len(args) > 2 {
		return "ERROR"
	}
	rst := 0
	if len(args) == 2 {
		if rst, err = strconv.Atoi(args[1]); err != nil || (rst != 0 && rst != 1) {
			return "ERROR"
		}
	}
	switch {
	case fun == 6 || (rst == 1 && (fun == 1 || fun == 0 || fun == 4)):
		m.radioFlag.Store(false)
		a.after = append(a.after, m.reset)
	case fun == 0 || fun == 1 || fun == 4 || fun == 5 || fun == 7:
		// The answer goes first, the +CPIN / +PDP URCs follow it; observers
		// see the new radio state by the time the host reads the answer.
		m.radioFlag.Store(fun == 1)
		a.after = append(a.after, func() { m.setCFUN(fun, true) })
	default:
		return "ERROR"
	}
	return "OK"
}

func (m *module) regStat() int {
	switch {
	case m.registered():
		return 1
	case m.radioOn() && m.vol.attachAllowed:
		return 2
	}
	return 0
}

func cmdReg(name string, field func(*module) *int, maxN int) handler {
	return func(m *module, a *answer, c command) string {
		p := field(m)
		switch c.form {
		case formRead:
			m.pollRegistration()
			a.line(name + ": " + regReadFields(*p, m.regStat()))
		case formTest:
			a.line(fmt.Sprintf("%s: (0-%d)", name, maxN))
		case formSet:
			n, err := strconv.Atoi(c.arg)
			if err != nil || n < 0 || n > maxN {
				return "ERROR"
			}
			*p = n
		default:
			return "ERROR"
		}
		return "OK"
	}
}

func cmdCGATT(m *module, a *answer, c command) string {
	switch c.form {
	case formRead:
		m.pollRegistration()
		stat := 0
		if m.registered() {
			stat = 1
		}
		a.line(fmt.Sprintf("+CGATT: %d", stat))
	case formTest:
		a.line("+CGATT: (0,1)")
	case formSet:
		switch c.arg {
		case "0":
			m.vol.attachAllowed = false
			m.bearerLost(true)
		case "1":
			m.vol.attachAllowed = true
			if !m.awaitRegistration() {
				return m.cme(30, "no network service")
			}
		default:
			return "ERROR"
		}
	default:
		return "ERROR"
	}
	return "OK"
}

func cmdCBANDCFG(m *module, a *answer, c command) string {
	switch c.form {
	case formRead:
		a.line(`+CBANDCFG: "CAT-M",` + m.saved.bands["CAT-M"])
		a.line(`+CBANDCFG: "NB-IOT",` + m.saved.bands["NB-IOT"])
	case formTest:
	case formSet:
		args := splitArgs(c.arg)
		rat := strings.ToUpper(args[0])
		if _, ok := m.saved.bands[rat]; !ok || len(args) < 2 {
			return "ERROR"
		}
		for _, b := range args[1:] {
			if n, err := strconv.Atoi(b); err != nil || n < 1 || n > 85 {
				return "ERROR"
			}
		}
		m.saved.bands[rat] = strings.Join(args[1:], ",")
	default:
		return "ERROR"
	}
	return "OK"
}

func cmdCPSMS(m *module, a *answer, c command) string {
	switch c.form {
	case formRead:
		a.line(fmt.Sprintf(`+CPSMS: %d,,,"%s","%s"`, m.saved.psmMode, m.saved.psmT3412, m.saved.psmT3324))
	case formTest:
	case formSet:
		args := splitArgs(c.arg)
		mode, err := strconv.Atoi(args[0])
		if err != nil || mode < 0 || mode > 2 || len(args) > 5 {
			return "ERROR"
		}
		m.saved.psmMode = mode
		if len(args) >= 4 && args[3] != "" {
			m.saved.psmT3412 = args[3]
		}
		if len(args) == 5 && args[4] != "" {
			m.saved.psmT3324 = args[4]
		}
	default:
		return "ERROR"
	}
	return "OK"
}

func (m *module) act() int {
	if m.saved.cmnb == 1 {
		return 7
	}
	return 9
}

func cmdCOPS(m *module, a *answer, c command) string {
	switch c.form {
	case formRead:
		if m.registered() {
			a.line(fmt.Sprintf(`+COPS: 0,0,"%s",%d`, operator, m.act()))
		} else {
			a.line("+COPS: 0")
		}
	case formTest, formSet:
	default:
		return "ERROR"
	}
	return "OK"
}

// cmdCBC reports a healthy supply: charge status 0, 85 %, 3,950 mV.
func cmdCBC(_ *module, a *answer, c command) string {
	if c.form != formExec {
		return "ERROR"
	}
	a.line("+CBC: 0,85,3950")
	return "OK"
}

func cmdCPSI(m *module, a *answer, c command) string {
	if c.form != formRead {
		return "ERROR"
	}
	switch {
	case m.registered() && m.act() == 7:
		a.line("+CPSI: LTE CAT-M1,Online,242-01,0xA411,18460008,457,EUTRAN-BAND20,6352,3,3,-7,-77,-70,14")
	case m.registered():
		a.line("+CPSI: LTE NB-IOT,Online,242-01,0xA411,18460008,457,EUTRAN-BAND20,6352,0,0,-7,-77,-70,14")
	case m.radioOn():
		a.line("+CPSI: NO SERVICE,Online")
	default:
		a.line("+CPSI: NO SERVICE,Offline")
	}
	return "OK"
}

func cmdCPOWD(m *module, a *answer, c command) string {
	if c.form != formSet {
		return "ERROR"
	}
	switch c.arg {
	case "1":
		a.line("NORMAL POWER DOWN")
	case "0":
	default:
		return "ERROR"
	}
	// Observers see the module off by the time the host reads the answer.
	m.poweredFlag.Store(false)
	m.radioFlag.Store(false)
	a.after = append(a.after, m.powerDown)
	return ""
}
