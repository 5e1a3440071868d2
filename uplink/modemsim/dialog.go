package modemsim

import (
	"strings"
)

// answer collects what the module says in reply to one command line, so it
// goes out as one paced write after the turnaround.
type answer struct {
	buf   []byte
	after []func() // run once the answer is written (power down, reset)
}

func (a *answer) line(text string) { a.buf = append(a.buf, frame(text)...) }
func (a *answer) raw(b []byte)     { a.buf = append(a.buf, b...) }

// handler executes one command and returns its final result: "OK", an
// error, another final ("SHUT OK"), or "" when the answer has none.
type handler func(m *module, a *answer, c command) string

// handlers is filled by init in commands.go and cip.go.
var handlers = map[string]handler{}

func isErrorResult(final string) bool {
	return strings.HasPrefix(final, "ERROR") || strings.HasPrefix(final, "+CME ERROR")
}

// commandLine runs one line terminated by CR.
func (m *module) commandLine(line string, overflow bool) {
	body, ok := findAT(line)
	if ok {
		m.acct.add(func(a *Accounting) { a.ATCommands++ })
		m.faults.commands++
		if f := &m.faults; f.HangAfterCommands > 0 && !f.hangFired && f.commands > f.HangAfterCommands {
			f.hangFired = true
			m.hung = true
			m.log.Debug("fault: module hangs", "after_commands", f.HangAfterCommands)
			return
		}
	}
	if m.vol.echo {
		m.write([]byte(line + "\r"))
	}
	if !ok {
		return
	}
	m.log.Debug("at command", "line", redact(line), "t", m.clk.now())
	m.delay(m.cfg.Turnaround)
	m.slowAnswer()

	var a answer
	if overflow {
		a.line("ERROR")
	} else {
		m.execLine(&a, body)
	}
	if m.rxCmd != 0 {
		// Counted first, so a host that has read the answer sees it counted.
		m.countRx(len(line)+1, len(a.buf))
	}
	m.write(a.buf)
	m.afterAnswer()
	for _, fn := range a.after {
		fn()
	}
	if f := &m.faults; f.RebootAfterCommands > 0 && !f.rebootFired && f.commands >= f.RebootAfterCommands {
		f.rebootFired = true
		m.log.Debug("fault: spontaneous reboot", "after_commands", f.RebootAfterCommands)
		m.reset()
	}
}

// countRx accounts one AT+CIPRXGET=2/3/4 exchange: the command line with its
// CR (and echo), the answer without its payload, and the UART time both take
// with the module's turnaround.
func (m *module) countRx(lineBytes, answerBytes int) {
	mode, payload := m.rxCmd, m.rxPayload
	m.rxCmd, m.rxPayload = 0, 0
	n := lineBytes + answerBytes - payload
	if m.vol.echo {
		n += lineBytes
	}
	t := uartTime(n, m.cfg.Baud) + m.cfg.Turnaround
	m.acct.add(func(a *Accounting) {
		switch {
		case mode == 4:
			a.RxPolls++
		case payload == 0:
			a.RxReads++
			a.RxEmptyReads++
		default:
			a.RxReads++
		}
		a.RxUARTBytes += int64(n)
		a.RxUARTSeconds += t.Seconds()
	})
}

// execLine runs the commands of a line; the final result of the line is the
// last command's, or the first error.
func (m *module) execLine(a *answer, body string) {
	cmds, err := splitCommands(body)
	if err != nil {
		a.line("ERROR")
		return
	}
	if len(cmds) == 0 {
		a.line("OK")
		return
	}
	for i, c := range cmds {
		final := m.exec(a, c)
		// A prompt or a power change ends the line.
		stop := m.data != nil || len(a.after) > 0
		last := i == len(cmds)-1 || stop
		switch {
		case isErrorResult(final):
			a.line(final)
			return
		case final == "" || (final == "OK" && !last):
		default:
			a.line(final)
		}
		if stop {
			return
		}
	}
}

func (m *module) exec(a *answer, c command) string {
	if f := &m.faults; f.ErrorOn != "" && f.ErrorOn == c.faultName() {
		f.errorUses++
		if f.errorUses == max(f.ErrorOnNth, 1) {
			m.log.Debug("fault: injected ERROR", "command", c.name, "use", f.errorUses)
			return "ERROR"
		}
	}
	h, ok := handlers[c.name]
	if !ok {
		return "ERROR"
	}
	return h(m, a, c)
}

// afterAnswer injects line noise after every GarbageEvery answers.
func (m *module) afterAnswer() {
	f := &m.faults
	f.answers++
	if f.GarbageEvery <= 0 || f.answers%f.GarbageEvery != 0 {
		return
	}
	burst := make([]byte, 3+m.garbage.IntN(14))
	for i := range burst {
		burst[i] = byte(0x80 + m.garbage.IntN(0x80))
	}
	m.write(burst)
}

// slowAnswer applies the SlowAnswers fault: a real wait, so host timeouts
// see it, and the same modelled time on the virtual clock.
func (m *module) slowAnswer() {
	d := m.faults.SlowAnswers
	if d <= 0 {
		return
	}
	if err := sleep(m.ctx, d); err != nil && m.err == nil {
		m.err = err
	}
	if m.clk.virtual {
		m.delay(d)
	}
}

// cme is an error result as selected by AT+CMEE.
func (m *module) cme(code int, text string) string {
	switch m.vol.cmee {
	case 1:
		return "+CME ERROR: " + itoa(code)
	case 2:
		return "+CME ERROR: " + text
	}
	return "ERROR"
}

// redact hides APN credentials from logs.
func redact(line string) string {
	upper := strings.ToUpper(line)
	if i := strings.Index(upper, "+CSTT="); i >= 0 {
		return line[:i+6] + "<redacted>"
	}
	return line
}

// faultState is Faults plus the counters that trigger them.
type faultState struct {
	Faults
	commands    int
	bytes       int
	errorUses   int
	sends       int // data AT+CIPSENDs, for LatePromptOn
	answers     int
	hangFired   bool
	rebootFired bool
	closeFired  bool
	pdpFired    bool
	loseFired   bool
}

// faultName is how Faults.ErrorOn names this use of the command.
func (c command) faultName() string {
	switch c.form {
	case formRead:
		return c.name + "?"
	case formTest:
		return c.name + "=?"
	}
	return c.name
}
