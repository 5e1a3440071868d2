package modem

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// StartBearer brings the PDP bearer up for a single TCP connection with
// the CIP stack: AT+CIPSHUT (back to IP INITIAL whatever state a previous
// window left), AT+CIPMUX=0, AT+CIPRXGET=1 (manual receive, binary safe),
// AT+CIPQSEND, AT+CSTT with the APN and optional credentials (the bare
// exec form when apn is empty: the module's stored APN applies), AT+CIICR and
// AT+CIFSR, which returns the local address. Credentials are never logged,
// and the password is redacted from the trace like Options.Secrets.
//
// After a PrepareBearer with the same APN and credentials that nothing has
// voided since, only AT+CIICR and AT+CIFSR are sent. Should the module
// refuse those with an error answer anyway (firmware that lost the
// preparation without saying so), the whole sequence is run once more from
// AT+CIPSHUT, so a preparation can cost time but never the bearer.
func (m *Modem) StartBearer(ctx context.Context, apn, user, password string) (ip string, err error) {
	cstt, err := csttCommand(apn, user, password)
	if err != nil {
		return "", stepErr("AT+CSTT", err)
	}
	m.trace.addSecret([]byte(password))
	prepared := m.takePrepared(cstt)
	if prepared {
		ip, err = m.activate(ctx)
		if err == nil {
			m.log.Info("bearer up", "ip", ip, "prepared", true)
			return ip, nil
		}
		if !isCommandError(err) {
			return "", err
		}
		m.log.Debug("activation after the preparation refused; bringing the bearer up from AT+CIPSHUT", "err", err)
	}
	if _, err := m.configureStack(ctx, cstt); err != nil {
		return "", err
	}
	ip, err = m.activate(ctx)
	if err != nil {
		return "", err
	}
	m.log.Info("bearer up", "ip", ip, "prepared", false)
	return ip, nil
}

// PrepareBearer sends the part of StartBearer that needs no network:
// AT+CIPSHUT, AT+CIPMUX=0, AT+CIPRXGET=1, AT+CIPQSEND, AT+CIPSENDHEX=0 and
// AT+CSTT, which leave the stack in IP START. The SIMCom manual asks only
// for IP INITIAL for these (sim7000-at.md §5.1–5.2); AT+CIICR is the first
// step that needs the attach. Run while the module registers, it takes
// these exchanges out of the radio-on time after registration: a later
// StartBearer with the same APN and credentials sends only AT+CIICR and
// AT+CIFSR.
//
// How a module answers these commands before the attach is not
// documented, so an error answer (ERROR, +CME ERROR) is not a failure:
// PrepareBearer logs it at debug level, records nothing and returns nil,
// and StartBearer then runs the whole sequence. Other errors (bad
// arguments, a module that does not answer, a reboot, the port, ctx) are
// returned.
//
// The preparation is void, and StartBearer starts from AT+CIPSHUT again,
// after anything that can change the IP state meanwhile: the URCs "RDY",
// "SMS Ready" (a reboot), "+PDP: DEACT", any "+CFUN:" and "+CPIN: NOT
// READY"; and the host's own SetFunctionality, PowerDown, Sync and Exec
// (a raw command may do anything).
func (m *Modem) PrepareBearer(ctx context.Context, apn, user, password string) error {
	cstt, err := csttCommand(apn, user, password)
	if err != nil {
		return stepErr("AT+CSTT", err)
	}
	m.trace.addSecret([]byte(password))
	m.voidPreparation("prepared again")
	epoch, err := m.configureStack(ctx, cstt)
	if err != nil {
		if isCommandError(err) {
			m.log.Debug("bearer preparation refused before registration; StartBearer will do it all", "err", err)
			return nil
		}
		return err
	}
	m.connMu.Lock()
	kept := epoch == m.ipEpoch
	if kept {
		m.prepared = cstt
	}
	m.connMu.Unlock()
	if !kept {
		m.log.Debug("bearer preparation void before it was done; StartBearer will do it all")
		return nil
	}
	m.log.Debug("bearer prepared")
	return nil
}

// voidPreparation forgets a preparation: something may have changed the
// IP state since. It also moves ipEpoch, so a PrepareBearer under way
// does not record its result.
func (m *Modem) voidPreparation(reason string) {
	m.connMu.Lock()
	dropped := m.voidPreparationLocked()
	m.connMu.Unlock()
	if dropped {
		m.log.Debug("bearer preparation void", "reason", reason)
	}
}

// voidPreparationLocked is voidPreparation with connMu held; it reports
// whether a preparation was forgotten, for the caller to log.
func (m *Modem) voidPreparationLocked() bool {
	m.ipEpoch++
	dropped := m.prepared != ""
	m.prepared = ""
	return dropped
}

// takePrepared reports whether a preparation for the AT+CSTT line cstt is
// in place, and forgets it either way: one StartBearer uses it.
func (m *Modem) takePrepared(cstt string) bool {
	m.connMu.Lock()
	defer m.connMu.Unlock()
	p := m.prepared
	m.prepared = ""
	if p != "" && p != cstt {
		m.log.Debug("bearer prepared for another APN or credentials; starting over")
	}
	return p != "" && p == cstt
}

// configureStack sends AT+CIPSHUT, AT+CIPMUX=0, AT+CIPRXGET=1,
// AT+CIPQSEND, AT+CIPSENDHEX=0 and cstt. It returns the preparation epoch
// read right after SHUT OK: a "+PDP: DEACT" that comes before SHUT OK is
// the shut's own.
func (m *Modem) configureStack(ctx context.Context, cstt string) (epoch uint64, err error) {
	if err := m.shut(ctx); err != nil {
		return 0, err
	}
	m.connMu.Lock()
	epoch = m.ipEpoch
	m.connMu.Unlock()
	qsend := "AT+CIPQSEND=0"
	if m.opts.QuickSend {
		qsend = "AT+CIPQSEND=1"
	}
	for _, cmd := range []string{"AT+CIPMUX=0", "AT+CIPRXGET=1", qsend} {
		if _, err := m.query(ctx, cmd, shortTimeout); err != nil {
			return 0, err
		}
	}
	// Hex input mode is not saved, but a host that used it before us (the
	// method this project replaces did) may have left it on. Firmware
	// without the command answers ERROR, which is harmless.
	if _, err := m.query(ctx, "AT+CIPSENDHEX=0", shortTimeout); err != nil && !isCommandError(err) {
		return 0, err
	}
	if _, err := m.query(ctx, cstt, csttTimeout); err != nil {
		return 0, err
	}
	return epoch, nil
}

// activate sends AT+CIICR and AT+CIFSR and records the local address.
func (m *Modem) activate(ctx context.Context) (string, error) {
	if _, err := m.query(ctx, "AT+CIICR", ciicrTimeout); err != nil {
		return "", err
	}
	ip, err := m.localAddress(ctx)
	if err != nil {
		return "", err
	}
	m.connMu.Lock()
	m.localIP = ip
	m.connMu.Unlock()
	return ip, nil
}

// localAddress sends AT+CIFSR, which moves the bearer to IP STATUS and is
// answered by the bare address without OK. Some firmware appends OK
// anyway: it is absorbed here so it cannot pass for the next command's
// answer.
func (m *Modem) localAddress(ctx context.Context) (string, error) {
	const cmd = "AT+CIFSR"
	if err := m.acquire(ctx); err != nil {
		return "", stepErr(cmd, err)
	}
	defer m.release()
	var ip string
	err := m.exchangeLocked(ctx, cmd, cifsrTimeout, func(ev event) (bool, error) {
		if ev.kind != evLine {
			return false, nil
		}
		if addr, ok := parseIPLine(ev.line); ok {
			ip = addr
			return true, nil
		}
		if perr := parseError(ev.line); perr != nil {
			return true, perr
		}
		return false, nil
	})
	if err != nil {
		return "", stepErr(cmd, err)
	}
	_ = m.await(ctx, cifsrOKGrace, func(ev event) (bool, error) {
		return ev.kind == evLine && ev.line == "OK", nil
	})
	return ip, nil
}

// csttCommand builds AT+CSTT. With no APN it is the exec form, which
// starts the task with the APN stored in the module (default "CMNET", or
// what an earlier AT+CSTT saved) and still moves the stack to IP START,
// the only state AT+CIICR accepts.
func csttCommand(apn, user, password string) (string, error) {
	if apn == "" {
		if user != "" || password != "" {
			return "", fmt.Errorf("%w: credentials without an APN", ErrInvalidArgument)
		}
		return "AT+CSTT", nil
	}
	a, err := quoteArg("apn", apn, 50)
	if err != nil {
		return "", err
	}
	if user == "" && password == "" {
		return "AT+CSTT=" + a, nil
	}
	u, err := quoteArg("user", user, 50)
	if err != nil {
		return "", err
	}
	p, err := quoteArg("password", password, 50)
	if err != nil {
		return "", err
	}
	return "AT+CSTT=" + a + "," + u + "," + p, nil
}

func isCommandError(err error) bool {
	var cme *CMEError
	return errors.Is(err, ErrCommand) || errors.As(err, &cme)
}

// shut sends AT+CIPSHUT and waits for SHUT OK. "+PDP: DEACT" may come
// first (the bearer going down is what we asked for).
func (m *Modem) shut(ctx context.Context) error {
	m.voidPreparation("AT+CIPSHUT")
	return m.exchange(ctx, "AT+CIPSHUT", cipshutTimeout, shutHandler)
}

func shutHandler(ev event) (bool, error) {
	if ev.kind != evLine {
		return false, nil
	}
	if ev.line == "SHUT OK" {
		return true, nil
	}
	if err := parseError(ev.line); err != nil {
		return true, err
	}
	return false, nil
}

// Dial opens the single TCP connection with AT+CIPSTART="TCP","host",port,
// waits for CONNECT OK (up to 160 s, the manual's maximum, bounded by ctx),
// asks AT+CIPSEND? once for the chunk size and returns the connection.
func (m *Modem) Dial(ctx context.Context, host string, port int) (*Conn, error) {
	const step = "AT+CIPSTART"
	h, err := quoteArg("host", host, 255)
	if err != nil || host == "" {
		return nil, stepErr(step, fmt.Errorf("%w: host %q", ErrInvalidArgument, host))
	}
	if port <= 0 || port > 65535 {
		return nil, stepErr(step, fmt.Errorf("%w: port %d", ErrInvalidArgument, port))
	}
	if err := m.acquire(ctx); err != nil {
		return nil, stepErr(step, err)
	}
	defer m.release()

	m.connMu.Lock()
	m.connErr, m.rxPending, m.connOpen = nil, false, false
	m.connMu.Unlock()

	start := time.Now()
	cmd := `AT+CIPSTART="TCP",` + h + "," + strconv.Itoa(port)
	if err := m.exchangeLocked(ctx, cmd, cipstartTimeout, connectHandler()); err != nil {
		if errors.Is(err, ErrCommand) && m.alreadyConnected(ctx) {
			err = ErrAlreadyConnected
		}
		return nil, stepErr(step, err)
	}
	connectRT := time.Since(start)
	m.connMu.Lock()
	local := m.localIP
	m.connOpen = true
	m.connMu.Unlock()
	m.log.Info("tcp connected", "host", host, "port", port, "after", connectRT)

	chunk := m.askSendLimit(ctx)
	c := &Conn{
		m:         m,
		connectRT: connectRT,
		maxChunk:  chunk,
		local:     localAddr(local),
		remote:    remoteAddr(host, port),
		closed:    make(chan struct{}),
		opened:    time.Now(),
	}
	return c, nil
}

// connectHandler waits for the outcome of AT+CIPSTART. "OK" only means the
// command was accepted; the result is a later line, possibly after URCs or
// a "STATE: ..." line.
func connectHandler() handler {
	return func(ev event) (bool, error) {
		if ev.kind != evLine {
			return false, nil
		}
		switch ev.line {
		case "CONNECT OK":
			return true, nil
		case "CONNECT FAIL":
			return true, ErrConnectFail
		case "ALREADY CONNECT":
			return true, ErrAlreadyConnected
		case urcPDPDeact:
			return true, ErrPDPDeact
		}
		if err := parseError(ev.line); err != nil {
			return true, err
		}
		return false, nil
	}
}

// alreadyConnected waits briefly after a plain ERROR to AT+CIPSTART: the
// SIM800-family CIP stack (and, assumed, SIM7000's) sends
// "ERROR" then "ALREADY CONNECT" when a socket is still open.
func (m *Modem) alreadyConnected(ctx context.Context) bool {
	err := m.await(ctx, alreadyConnGrace, func(ev event) (bool, error) {
		if ev.kind == evLine && ev.line == "ALREADY CONNECT" {
			return true, ErrAlreadyConnected
		}
		return false, nil
	})
	return errors.Is(err, ErrAlreadyConnected)
}

// askSendLimit asks AT+CIPSEND? for the bytes one CIPSEND may carry and
// applies Options.SendLimit and the 1460-byte ceiling. Called with the
// UART held.
func (m *Modem) askSendLimit(ctx context.Context) int {
	var lines []string
	size := 0
	err := m.exchangeLocked(ctx, "AT+CIPSEND?", queryTimeout, okHandler("AT+CIPSEND?", &lines))
	if err == nil {
		for _, l := range lines {
			if v, ok := infoInts(l, "+CIPSEND:", 1); ok && v[0] > 0 {
				size = v[0]
				break
			}
		}
	}
	if size == 0 {
		m.log.Warn("no usable AT+CIPSEND? answer; using fallback chunk size",
			"chunk", fallbackSendChunk, "lines", lines, "err", err)
		size = fallbackSendChunk
	}
	size = min(size, maxSendChunk)
	if m.opts.SendLimit > 0 {
		size = min(size, m.opts.SendLimit)
	}
	return size
}

// modemAddr is a remote given by name: the module resolves it, the host
// never learns the address.
type modemAddr string

func (a modemAddr) Network() string { return "tcp" }
func (a modemAddr) String() string  { return string(a) }

func localAddr(ip string) net.Addr {
	if a, err := netip.ParseAddr(ip); err == nil {
		return net.TCPAddrFromAddrPort(netip.AddrPortFrom(a, 0))
	}
	return modemAddr("")
}

func remoteAddr(host string, port int) net.Addr {
	if a, err := netip.ParseAddr(strings.Trim(host, "[]")); err == nil {
		return net.TCPAddrFromAddrPort(netip.AddrPortFrom(a, uint16(port)))
	}
	return modemAddr(net.JoinHostPort(host, strconv.Itoa(port)))
}
