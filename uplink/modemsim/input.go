package modemsim

// maxLine bounds a command line; the SIM7000 accepts 556 characters.
const maxLine = 556

// input handles bytes from the host.
func (m *module) input(b []byte) {
	defer m.inputDone.Add(int64(len(b)))
	if m.power == powerOff {
		return
	}
	n := len(b)
	m.acct.add(func(a *Accounting) { a.UARTBytesIn += int64(n) })
	if m.power != powerReady || m.hung {
		return
	}
	m.chargeHost()
	m.inFree = max(m.clk.now(), m.inFree) + uartTime(n, m.cfg.Baud)
	m.wait(m.inFree)
	for _, c := range b {
		if !m.talking() {
			return
		}
		switch {
		case m.cfg.Autobaud && m.vol.autobaud != autobaudLocked:
			m.autobaudByte(c)
		case m.data != nil:
			m.dataByte(c)
		default:
			m.commandByte(c)
		}
	}
	if len(m.echoPending) > 0 {
		m.write(nil)
	}
	m.markQuiet()
}

func (m *module) commandByte(c byte) {
	switch {
	case c == '\r':
		line := string(m.line)
		m.line = m.line[:0]
		overflow := m.lineOverflow
		m.lineOverflow = false
		m.commandLine(line, overflow)
	case c == '\n' && len(m.line) == 0:
		// The LF of a CR LF terminator.
	case len(m.line) >= maxLine:
		m.lineOverflow = true
	default:
		m.line = append(m.line, c)
	}
}

// autobaudByte consumes input before the rate is detected.
func (m *module) autobaudByte(c byte) {
	switch {
	case m.vol.autobaud == autobaudSyncLine:
		if c == '\r' {
			m.vol.autobaud = autobaudLocked
		}
	case m.vol.autobaud == autobaudSawA && (c == 'T' || c == 't'):
		m.vol.autobaud = autobaudSyncLine
	case c == 'A' || c == 'a':
		m.vol.autobaud = autobaudSawA
	default:
		m.vol.autobaud = autobaudHunting
	}
}
