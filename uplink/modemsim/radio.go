package modemsim

import "time"

type powerState int

const (
	powerOff powerState = iota
	powerBooting
	powerReady
)

// radioPeriod is one CFUN=1 period and its registration instant.
type radioPeriod struct {
	id      int
	at      time.Duration // registration instant
	blocked bool          // registration cannot complete in this period
}

// powerDown switches the module off: silence, link and settings gone.
func (m *module) powerDown() {
	if m.power == powerOff {
		return
	}
	m.log.Debug("power off")
	m.setCFUN(0, false)
	m.dropLink()
	m.power = powerOff
	m.epoch++
	m.hung = false
	m.data = nil
	m.line = m.line[:0]
	m.echoPending = nil
	m.poweredFlag.Store(false)
	m.acct.setPowered(false)
}

// boot starts the module after power-on or a reset.
func (m *module) boot() {
	m.log.Debug("power on: booting", "boot_delay", m.cfg.BootDelay)
	m.power = powerBooting
	m.epoch++
	m.vol = defaultVolatile()
	m.rx, m.rxBacklog = nil, nil
	m.poweredFlag.Store(true)
	m.acct.setPowered(true)
	m.schedule(m.clk.now()+m.cfg.BootDelay, true, func() {
		m.power = powerReady
		banner := !m.cfg.NoBootBanner && !m.cfg.Autobaud
		if banner {
			m.urc("RDY")
		}
		m.setCFUN(1, false)
		if banner {
			m.write(append(append(frame("+CFUN: 1"), frame("+CPIN: READY")...), frame("SMS Ready")...))
		}
	})
}

// reset is AT+CFUN=1,1, AT+CFUN=6 or a spontaneous reboot.
func (m *module) reset() {
	m.acct.add(func(a *Accounting) { a.Reboots++ })
	m.powerDown()
	m.boot()
}

// radioOn reports CFUN=1 on a running module.
func (m *module) radioOn() bool { return m.power == powerReady && m.vol.cfun == 1 }

// setCFUN changes the functionality level and keeps the radio accounting,
// the registration model and the bearer in step.
func (m *module) setCFUN(fun int, urcs bool) {
	was := m.radioOn()
	m.vol.cfun = fun
	on := m.radioOn()
	switch {
	case on && !was:
		now := m.clk.now()
		m.attach = radioPeriod{id: m.attach.id + 1, at: now + m.cfg.AttachDelay,
			blocked: !m.canRegister()}
		m.acct.radioSwitchedOn(m.attach.at, m.attach.blocked)
		m.radioFlag.Store(true)
		// Only an enabled URC needs an event; without one, a pending event
		// would let host idleness move the virtual clock for nothing.
		if !m.attach.blocked && max(m.vol.cregN, m.vol.cgregN, m.vol.ceregN) > 0 {
			id := m.attach.id
			m.schedule(m.attach.at, false, func() { m.registrationURCs(id) })
		}
		if urcs {
			m.urc("+CPIN: READY")
		}
	case !on && was:
		m.acct.radioSwitchedOff()
		m.radioFlag.Store(false)
		m.bearerLost(urcs)
		if urcs {
			m.urc("+CPIN: NOT READY")
		}
	}
}

// bearerLost drops the PDP context when the radio or the attach goes away.
func (m *module) bearerLost(urc bool) {
	if m.vol.ip == stateInitial || m.vol.ip == statePDPDeact {
		return
	}
	m.dropLink()
	m.vol.ip = statePDPDeact
	if urc {
		m.urc("+PDP: DEACT")
	}
}

func (m *module) csq() int {
	v := m.cfg.CSQ
	if m.faults.SignalQuality != 0 {
		v = m.faults.SignalQuality
	}
	if v == CSQWeakest {
		return 0
	}
	return v
}

// canRegister reports whether registration can ever complete now.
func (m *module) canRegister() bool {
	return !m.faults.NoRegistration && m.csq() != CSQUnknown && m.vol.attachAllowed
}

func (m *module) registered() bool {
	return m.radioOn() && m.canRegister() && !m.attach.blocked && m.clk.now() >= m.attach.at
}

// pollRegistration is called by registration queries: on the virtual clock
// an early poll jumps to the registration instant, so the modelled radio-on
// time does not depend on the host's poll cadence.
func (m *module) pollRegistration() {
	if m.clk.virtual && m.radioOn() && m.canRegister() && !m.attach.blocked && m.clk.now() < m.attach.at {
		m.wait(m.attach.at)
	}
}

func (m *module) registrationURCs(period int) {
	if m.attach.id != period || !m.registered() {
		return
	}
	for _, r := range []struct {
		name string
		n    int
	}{{"+CREG", m.vol.cregN}, {"+CGREG", m.vol.cgregN}, {"+CEREG", m.vol.ceregN}} {
		if r.n >= 1 {
			m.urc(r.name + ": " + regURCFields(r.n, 1))
		}
	}
}

// awaitRegistration is what commands that need the attach (AT+CIICR,
// AT+CIPSTART from IP INITIAL, AT+CGATT=1) do: wait for a registration
// that will come, fail at once on one that will not.
func (m *module) awaitRegistration() bool {
	if !m.radioOn() || !m.canRegister() || m.attach.blocked {
		return false
	}
	m.wait(m.attach.at)
	return true
}

// setFaults installs new faults; lifting a registration block starts the
// attach now.
func (m *module) setFaults(f Faults) {
	m.faults = faultState{Faults: f}
	if m.radioOn() && m.attach.blocked && m.canRegister() {
		m.attach.blocked = false
		m.attach.at = m.clk.now() + m.cfg.AttachDelay
		m.acct.attachChanged(m.attach.at)
		id := m.attach.id
		if max(m.vol.cregN, m.vol.cgregN, m.vol.ceregN) > 0 {
			m.schedule(m.attach.at, false, func() { m.registrationURCs(id) })
		}
	}
}
