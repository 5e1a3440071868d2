package modem

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Sync sends AT until the module answers OK (every ~300 ms, bounded by ctx
// and 10 s), which also lets an autobauding module lock onto our rate, then
// switches echo off (ATE0) and selects verbose errors (AT+CMEE=2).
//
// That first OK may be stale: the late answer to a command an earlier
// process abandoned. Before going on, Sync therefore waits until the line
// has been quiet for 150 ms (at most 1 s) and resynchronises with
// AT+CMEE?, whose "+CMEE: <n>" line no other command of this driver
// provokes: finals that come before that line answer earlier commands and
// are discarded.
//
// A module left waiting for CIPSEND payload (a host that died after the
// prompt) takes every probe as data. After 3 s without an answer Sync
// therefore writes one filler of ESC (cancels a variable-length send) and
// 1459 NULs (completes any fixed-length send) before probing on.
func (m *Modem) Sync(ctx context.Context) error {
	m.voidPreparation("resync")
	ctx, cancel := context.WithTimeout(ctx, syncTotal)
	defer cancel()
	if err := m.acquire(ctx); err != nil {
		return stepErr("AT", err)
	}
	start := time.Now()
	tries := 0
	filled := false
	for {
		tries++
		err := m.syncOnce(ctx)
		if err == nil {
			break
		}
		if !filled && time.Since(start) >= syncFillAfter && ctx.Err() == nil {
			filled = true
			m.log.Warn("modem silent; flushing a possibly pending CIPSEND")
			m.trace.line("out", "<ESC + 1459 NUL filler>")
			if ferr := m.send(ctx, dataModeFiller()); ferr != nil {
				err = ferr
			}
		}
		if !errors.Is(err, ErrTimeout) || ctx.Err() != nil {
			m.release()
			return stepErr("AT", fmt.Errorf("no answer after %d tries in %v: %w",
				tries, time.Since(start).Round(time.Millisecond), err))
		}
	}
	m.log.Debug("modem answered", "tries", tries, "after", time.Since(start))
	err := m.resyncLocked(ctx)
	m.release()
	if err != nil {
		return err
	}
	if _, err := m.query(ctx, "ATE0", shortTimeout); err != nil {
		return err
	}
	_, err = m.query(ctx, "AT+CMEE=2", shortTimeout)
	return err
}

// dataModeFiller ends a pending CIPSEND whatever its length: ESC cancels
// the variable-length form, and 1460 bytes complete any fixed length.
// NULs are not a command in command mode, so a module that was not in data
// mode just discards them (or answers ERROR to the CR that follows).
func dataModeFiller() []byte {
	b := make([]byte, maxSendChunk+1)
	b[0] = 0x1b
	b[len(b)-1] = '\r'
	return b
}

// syncOnce is one AT probe. Boot banners, echo and line noise are expected
// here and ignored; only OK counts.
func (m *Modem) syncOnce(ctx context.Context) error {
	m.begin("AT")
	if err := m.sendLine(ctx, "AT"); err != nil {
		return err
	}
	return m.await(ctx, syncTry, func(ev event) (bool, error) {
		return ev.kind == evLine && ev.line == "OK", nil
	})
}

// Exec sends one raw command line and collects its answer until a final
// result: OK, ERROR, +CME ERROR, or one of the CIP stack's finals. It knows
// the three commands whose answers break the pattern: AT+CIFSR (a bare
// address, no OK), AT+CIPSTATUS (OK first, then STATE) and AT+CIPSTART
// (OK first, then CONNECT OK/FAIL). It is meant for field diagnostics;
// AT+CIPSEND, which needs payload, is refused. A timeout <= 0 means 10 s.
// An error final is returned as Response.Final and as the error.
func (m *Modem) Exec(ctx context.Context, cmd string, timeout time.Duration) (Response, error) {
	cmd = strings.TrimSpace(cmd)
	upper := strings.ToUpper(cmd)
	step := commandName(cmd)
	if !strings.HasPrefix(upper, "AT") || strings.ContainsAny(cmd, "\r\n") {
		return Response{}, stepErr(step, fmt.Errorf("%w: not a single AT command line", ErrInvalidArgument))
	}
	if strings.HasPrefix(upper, "AT+CIPSEND") && !strings.HasPrefix(upper, "AT+CIPSEND?") {
		return Response{}, stepErr(step, fmt.Errorf("%w: AT+CIPSEND needs payload; use Conn.Write", ErrInvalidArgument))
	}
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	m.voidPreparation("raw command")
	var (
		resp              Response
		okSeen, stateSeen bool
		needsState        = upper == "AT+CIPSTATUS"
		isCIFSR           = upper == "AT+CIFSR"
		isStart           = strings.HasPrefix(upper, "AT+CIPSTART=")
	)
	err := m.exchange(ctx, cmd, timeout, func(ev event) (bool, error) {
		switch ev.kind {
		case evPrompt:
			resp.Lines = append(resp.Lines, "> ")
			return false, nil
		case evData:
			resp.Lines = append(resp.Lines, string(ev.data))
			return false, nil
		}
		line := ev.line
		if perr := parseError(line); perr != nil {
			resp.Final = line
			return true, perr
		}
		switch {
		case isCIFSR:
			if _, ok := parseIPLine(line); ok {
				resp.Final = line
				return true, nil
			}
		case needsState && line == "OK" && !stateSeen:
			okSeen = true
			return false, nil
		case needsState && okSeen && strings.HasPrefix(line, "STATE:"):
			resp.Lines = append(resp.Lines, "OK")
			resp.Final = line
			return true, nil
		case needsState && strings.HasPrefix(line, "STATE:"):
			stateSeen = true // firmware that sends OK last
		case isStart && line == "OK":
			resp.Lines = append(resp.Lines, line)
			return false, nil
		case genericFinal(line):
			resp.Final = line
			return true, finalError(line)
		}
		resp.Lines = append(resp.Lines, line)
		return false, nil
	})
	return resp, err
}

// Response is the raw answer to Exec.
type Response struct {
	Lines []string // information lines and URCs, in order, without echo
	Final string   // the final result line
}

// finalError maps the CIP stack's failure finals to their errors.
func finalError(line string) error {
	switch line {
	case "CONNECT FAIL":
		return ErrConnectFail
	case "ALREADY CONNECT":
		return ErrAlreadyConnected
	case "SEND FAIL":
		return ErrSendFail
	}
	return nil
}

// SIMStatus asks AT+CPIN? and returns "READY" or the module's other answer
// ("SIM PIN", "NOT INSERTED", a CME text) together with ErrSIMNotReady.
// While the SIM reports busy it asks again for up to 10 s.
func (m *Modem) SIMStatus(ctx context.Context) (string, error) {
	deadline := time.Now().Add(simBusyRetry)
	for {
		line, err := m.queryPrefix(ctx, "AT+CPIN?", "+CPIN:", cpinTimeout)
		var cme *CMEError
		switch {
		case err == nil:
			status := strings.TrimSpace(strings.TrimPrefix(line, "+CPIN:"))
			if status == "READY" {
				return status, nil
			}
			return status, stepErr("AT+CPIN?", fmt.Errorf("%w: %s", ErrSIMNotReady, status))
		case errors.As(err, &cme) && cme.Code == cmeSIMBusy && time.Now().Before(deadline):
			if werr := sleepCtx(ctx, time.Second); werr != nil {
				return "", stepErr("AT+CPIN?", werr)
			}
		case errors.As(err, &cme):
			text := cme.Text
			if text == "" {
				text = strconv.Itoa(cme.Code)
			}
			return text, stepErr("AT+CPIN?", errors.Join(ErrSIMNotReady, cme))
		default:
			return "", err
		}
	}
}

// SetFunctionality sends AT+CFUN=<fun>: 1 switches the radio on, 0 off
// (minimum functionality, UART alive), 4 flight mode.
func (m *Modem) SetFunctionality(ctx context.Context, fun int) error {
	m.voidPreparation("AT+CFUN")
	_, err := m.query(ctx, "AT+CFUN="+strconv.Itoa(fun), cfunTimeout)
	return err
}

// SignalQuality asks AT+CSQ. rssi 99 means not known yet; otherwise the
// level is -113 + 2·rssi dBm.
func (m *Modem) SignalQuality(ctx context.Context) (rssi, ber int, err error) {
	line, err := m.queryPrefix(ctx, "AT+CSQ", "+CSQ:", shortTimeout)
	if err != nil {
		return 0, 0, err
	}
	v, ok := infoInts(line, "+CSQ:", 2)
	if !ok {
		return 0, 0, stepErr("AT+CSQ", fmt.Errorf("%w: %q", ErrProtocol, line))
	}
	return v[0], v[1], nil
}

// Registration is the outcome of WaitRegistered.
type Registration struct {
	Stat       int           // 1 home, 5 roaming
	Technology string        // "NB-IoT", "CAT-M", "GSM" or "" when not reported
	Via        string        // "CEREG" or "CGREG": which query said registered
	Waited     time.Duration // from the first poll to the answer
}

// WaitRegistered polls AT+CEREG? then AT+CGREG? every 250 ms until either
// reports stat 1 (home) or 5 (roaming). On NB-IoT CREG may never register,
// so it is not asked. Stat 3 (denied) fails at once with
// ErrRegistrationDenied; running out of time gives ErrNotRegistered.
func (m *Modem) WaitRegistered(ctx context.Context, timeout time.Duration) (Registration, error) {
	const step = "AT+CEREG?"
	start := time.Now()
	deadline := start.Add(timeout)
	var last []string
	for {
		last = last[:0]
		denied := false
		for _, q := range []struct{ cmd, prefix, via string }{
			{"AT+CEREG?", "+CEREG:", "CEREG"},
			{"AT+CGREG?", "+CGREG:", "CGREG"},
		} {
			lines, err := m.query(ctx, q.cmd, shortTimeout)
			if err != nil {
				if ctx.Err() != nil || errors.Is(err, ErrClosed) || errors.Is(err, ErrRebooted) {
					return Registration{}, err
				}
				last = append(last, q.via+": "+err.Error())
				continue
			}
			reg, ok := findRegistration(lines, q.prefix)
			if !ok {
				last = append(last, fmt.Sprintf("%s: unreadable %q", q.via, lines))
				continue
			}
			last = append(last, fmt.Sprintf("%s stat %d", q.via, reg.stat))
			switch reg.stat {
			case 1, 5:
				r := Registration{Stat: reg.stat, Technology: technologyName(reg.act), Via: q.via}
				if r.Technology == "" {
					r.Technology = m.accessTechnology(ctx)
				}
				r.Waited = time.Since(start)
				m.log.Info("registered", "via", r.Via, "stat", r.Stat, "technology", r.Technology, "waited", r.Waited)
				return r, nil
			case 3:
				denied = true
			}
		}
		if denied {
			return Registration{}, stepErr(step, fmt.Errorf("%w (%s)", ErrRegistrationDenied, strings.Join(last, ", ")))
		}
		if time.Now().Add(regPollInterval).After(deadline) {
			return Registration{}, stepErr(step, fmt.Errorf("%w after %v (%s)", ErrNotRegistered,
				time.Since(start).Round(time.Millisecond), strings.Join(last, ", ")))
		}
		if err := sleepCtx(ctx, regPollInterval); err != nil {
			return Registration{}, stepErr(step, err)
		}
	}
}

func findRegistration(lines []string, prefix string) (regReading, bool) {
	for _, l := range lines {
		if r, ok := parseRegistration(l, prefix); ok {
			return r, true
		}
	}
	return regReading{}, false
}

// accessTechnology asks AT+COPS? for the <act> the registration answer
// did not carry (it does only with AT+CEREG=2, which also enables URCs).
func (m *Modem) accessTechnology(ctx context.Context) string {
	line, err := m.queryPrefix(ctx, "AT+COPS?", "+COPS:", queryTimeout)
	if err != nil {
		return ""
	}
	_, act, _ := parseCOPS(line)
	return technologyName(act)
}

// NetworkMode selects the radio access. Zero fields are left as they are
// (the settings persist in the module).
type NetworkMode struct {
	CNMP  int    // AT+CNMP: 2 auto, 13 GSM only, 38 LTE only, 51 GSM and LTE
	CMNB  int    // AT+CMNB: 1 CAT-M, 2 NB-IoT, 3 both
	Bands string // AT+CBANDCFG parameters, e.g. `"NB-IOT",20`
}

// SetNetworkMode applies the non-zero fields of nm.
func (m *Modem) SetNetworkMode(ctx context.Context, nm NetworkMode) error {
	if nm.CNMP != 0 {
		if _, err := m.query(ctx, "AT+CNMP="+strconv.Itoa(nm.CNMP), queryTimeout); err != nil {
			return err
		}
	}
	if nm.CMNB != 0 {
		if _, err := m.query(ctx, "AT+CMNB="+strconv.Itoa(nm.CMNB), queryTimeout); err != nil {
			return err
		}
	}
	if nm.Bands != "" {
		if strings.ContainsAny(nm.Bands, "\r\n") {
			return stepErr("AT+CBANDCFG", fmt.Errorf("%w: line break in bands", ErrInvalidArgument))
		}
		if _, err := m.query(ctx, "AT+CBANDCFG="+nm.Bands, queryTimeout); err != nil {
			return err
		}
	}
	return nil
}

// Info describes the module for diagnostics.
type Info struct {
	Model, Firmware, IMEI, Operator, NetworkMode, CPSI string
}

// Info asks the identification and network queries one by one and fills
// what the module answers. It fails only when ctx ends, the port is gone,
// or no query at all was answered.
func (m *Modem) Info(ctx context.Context) (Info, error) {
	var (
		info     Info
		failures []error
		answered int
	)
	ask := func(cmd string) []string {
		lines, err := m.query(ctx, cmd, queryTimeout)
		if err != nil {
			failures = append(failures, err)
			return nil
		}
		answered++
		return lines
	}
	first := func(lines []string, prefix string) string {
		for _, l := range lines {
			if rest, ok := strings.CutPrefix(l, prefix); ok {
				return strings.TrimSpace(rest)
			}
		}
		return ""
	}
	info.Model = first(ask("AT+CGMM"), "")
	if info.Model == "" {
		info.Model = first(ask("ATI"), "")
	}
	fw := first(ask("AT+CGMR"), "")
	info.Firmware = strings.TrimSpace(strings.TrimPrefix(fw, "Revision:"))
	info.IMEI = first(ask("AT+CGSN"), "")
	if op, _, ok := parseCOPS("+COPS:" + first(ask("AT+COPS?"), "+COPS:")); ok {
		info.Operator = op
	}
	var modes []string
	if v := first(ask("AT+CNMP?"), "+CNMP:"); v != "" {
		modes = append(modes, "CNMP="+v)
	}
	if v := first(ask("AT+CMNB?"), "+CMNB:"); v != "" {
		modes = append(modes, "CMNB="+v)
	}
	info.NetworkMode = strings.Join(modes, " ")
	info.CPSI = first(ask("AT+CPSI?"), "+CPSI:")
	if ctx.Err() != nil {
		return info, ctxErr(ctx)
	}
	for _, err := range failures {
		if errors.Is(err, ErrClosed) {
			return info, err
		}
	}
	if answered == 0 {
		return info, errors.Join(failures...)
	}
	return info, nil
}

// PowerDown sends AT+CPOWD=1 (normal power down). The module answers
// "NORMAL POWER DOWN" (no OK) and switches off; some firmware answers OK.
func (m *Modem) PowerDown(ctx context.Context) error {
	m.voidPreparation("AT+CPOWD")
	return m.exchange(ctx, "AT+CPOWD=1", cpowdTimeout, func(ev event) (bool, error) {
		if ev.kind != evLine {
			return false, nil
		}
		switch ev.line {
		case "NORMAL POWER DOWN", "OK":
			return true, nil
		}
		if err := parseError(ev.line); err != nil {
			return true, err
		}
		return false, nil
	})
}

// sleepCtx waits d or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctxErr(ctx)
	}
}
