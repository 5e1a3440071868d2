package modemsim

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Faults selects failures to inject. The zero value injects none.
//
// Counters start when the simulator starts or when SetFaults is called.
// Byte counts are payload bytes handed to CIPSEND, summed over all
// connections; command counts are AT command lines. Each count-triggered
// fault fires once; ConnectFail, NoRegistration, GarbageEvery and
// SlowAnswers stay in effect.
type Faults struct {
	// RemoteCloseAfterBytes makes the broker side close the TCP connection
	// once N payload bytes have been forwarded ("CLOSED" follows; bytes
	// beyond N are not delivered). 0 = off.
	RemoteCloseAfterBytes int
	// HangAfterCommands makes the module stop answering anything after N
	// AT commands, until it is power-cycled (PowerOff then PowerOn). 0 = off.
	HangAfterCommands int
	// ErrorOn names a command that answers ERROR on its ErrorOnNth use
	// (1-based; 0 means the first). A plain name counts the forms that act:
	// "CIPSEND" matches AT+CIPSEND=<n> and AT+CIPSEND, not the query
	// AT+CIPSEND? and not AT+CIPSENDHEX; "E" matches ATE0. A name ending in
	// "?" counts only the read form ("CEREG?"), one ending in "=?" only the
	// test form.
	ErrorOn    string
	ErrorOnNth int
	// GarbageEvery emits a burst of line noise (bytes 0x80-0xFF, no line
	// breaks) after every N-th answer. 0 = off.
	GarbageEvery int
	// RebootAfterCommands makes the module reset itself after answering the
	// N-th command: the link and all volatile settings are lost, echo is
	// back on, and the boot banner follows after BootDelay. 0 = off.
	RebootAfterCommands int
	// PDPDeactAfterBytes drops the bearer once N payload bytes have been
	// sent: "+PDP: DEACT" and state PDP DEACT until AT+CIPSHUT. 0 = off.
	PDPDeactAfterBytes int
	// ConnectFail answers every AT+CIPSTART with OK then CONNECT FAIL.
	ConnectFail bool
	// NoRegistration keeps +CEREG/+CGREG/+CREG at stat 2 (searching).
	NoRegistration bool
	// LoseDataAfterBytes still answers SEND OK / DATA ACCEPT, but bytes
	// after the N-th are silently dropped for the rest of that connection.
	// 0 = off.
	LoseDataAfterBytes int
	// SlowAnswers delays every answer by this much wall-clock time (and the
	// same virtual time when VirtualClock is set), to exercise the host's
	// timeouts.
	SlowAnswers time.Duration
	// SignalQuality overrides Config.CSQ when not 0 (same encoding).
	SignalQuality int
	// LatePromptOn makes the N-th data AT+CIPSEND (fixed or variable
	// length) print its "> " prompt only after LatePromptDelay of real
	// time. The module is in data entry from the command on, so whatever
	// the host sends meanwhile is payload. 0 = off.
	LatePromptOn int
}

// LatePromptDelay is how late the LatePromptOn prompt comes: longer than
// the 5 s a host usually waits for it.
const LatePromptDelay = 6 * time.Second

// faultKeys documents the ParseFaults vocabulary, in String order.
var faultKeys = []string{
	"remote-close=N", "hang=N", "error=CMD[?][:K]", "garbage=N", "reboot=N", "pdp-deact=N",
	"connect-fail", "no-registration", "lose-data=N", "slow=DURATION", "csq=N", "late-prompt=N",
}

// ParseFaults parses a comma-separated fault spec as given on the command
// line, e.g.
//
//	remote-close=500,hang=20,error=CIPSEND:3,garbage=5,reboot=30,pdp-deact=1000,
//	connect-fail,no-registration,lose-data=800,slow=200ms,csq=5,late-prompt=3
//
// Counts are positive integers; error=CMD without :K means the first use;
// slow takes a time.ParseDuration string; csq takes 0..31 or 99. An empty
// spec yields no faults. Faults.String is the inverse.
func ParseFaults(spec string) (Faults, error) {
	var f Faults
	seen := map[string]bool{}
	for item := range strings.SplitSeq(spec, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		key, value, hasValue := strings.Cut(item, "=")
		key = strings.ToLower(strings.TrimSpace(key))
		value = strings.TrimSpace(value)
		if seen[key] {
			return Faults{}, fmt.Errorf("fault %q given twice: %w", key, ErrFaultSpec)
		}
		seen[key] = true
		if err := f.set(key, value, hasValue); err != nil {
			return Faults{}, fmt.Errorf("fault %q: %w", item, err)
		}
	}
	return f, nil
}

func (f *Faults) set(key, value string, hasValue bool) error {
	flag := func(dst *bool) error {
		if hasValue {
			return fmt.Errorf("takes no value: %w", ErrFaultSpec)
		}
		*dst = true
		return nil
	}
	count := func(dst *int) error {
		n, err := positive(value)
		*dst = n
		return err
	}
	switch key {
	case "remote-close":
		return count(&f.RemoteCloseAfterBytes)
	case "hang":
		return count(&f.HangAfterCommands)
	case "garbage":
		return count(&f.GarbageEvery)
	case "reboot":
		return count(&f.RebootAfterCommands)
	case "pdp-deact":
		return count(&f.PDPDeactAfterBytes)
	case "lose-data":
		return count(&f.LoseDataAfterBytes)
	case "late-prompt":
		return count(&f.LatePromptOn)
	case "connect-fail":
		return flag(&f.ConnectFail)
	case "no-registration":
		return flag(&f.NoRegistration)
	case "error":
		name, nth, hasNth := strings.Cut(value, ":")
		name = normalizeCommandName(name)
		base := name
		if b, ok := strings.CutSuffix(name, "=?"); ok {
			base = b
		} else if b, ok := strings.CutSuffix(name, "?"); ok {
			base = b
		}
		if !validCommandName(base) {
			return fmt.Errorf("want error=CMD[:K], CMD? or CMD=?: %w", ErrFaultSpec)
		}
		f.ErrorOn, f.ErrorOnNth = name, 1
		if hasNth {
			n, err := positive(nth)
			if err != nil {
				return err
			}
			f.ErrorOnNth = n
		}
		return nil
	case "slow":
		d, err := time.ParseDuration(value)
		if err != nil || d <= 0 {
			return fmt.Errorf("want a positive duration like 200ms: %w", ErrFaultSpec)
		}
		f.SlowAnswers = d
		return nil
	case "csq":
		n, err := strconv.Atoi(value)
		if err != nil || !(n >= 0 && n <= 31 || n == CSQUnknown) {
			return fmt.Errorf("want 0..31 or 99: %w", ErrFaultSpec)
		}
		if n == 0 {
			n = CSQWeakest
		}
		f.SignalQuality = n
		return nil
	}
	return fmt.Errorf("unknown fault (known: %s): %w", strings.Join(faultKeys, ", "), ErrFaultSpec)
}

func positive(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("want a positive integer, got %q: %w", s, ErrFaultSpec)
	}
	return n, nil
}

// normalizeCommandName turns "AT+CIPSEND", "+cipsend" or "CIPSEND" into
// "CIPSEND", the form commands are matched by.
func normalizeCommandName(name string) string {
	name = strings.ToUpper(strings.TrimSpace(name))
	name = strings.TrimPrefix(name, "AT")
	return strings.TrimPrefix(name, "+")
}

// validCommandName accepts what splitCommands can produce as a name:
// letters, digits and '_', or '&' and a letter.
func validCommandName(name string) bool {
	if strings.HasPrefix(name, "&") {
		return len(name) == 2 && isLetter(name[1])
	}
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; !isLetter(c) && !isDigit(c) && c != '_' {
			return false
		}
	}
	return true
}

// String formats f in the ParseFaults syntax; "" for no faults.
func (f Faults) String() string {
	var parts []string
	add := func(key string, n int) {
		if n > 0 {
			parts = append(parts, key+"="+strconv.Itoa(n))
		}
	}
	add("remote-close", f.RemoteCloseAfterBytes)
	add("hang", f.HangAfterCommands)
	if f.ErrorOn != "" {
		parts = append(parts, fmt.Sprintf("error=%s:%d", f.ErrorOn, max(f.ErrorOnNth, 1)))
	}
	add("garbage", f.GarbageEvery)
	add("reboot", f.RebootAfterCommands)
	add("pdp-deact", f.PDPDeactAfterBytes)
	if f.ConnectFail {
		parts = append(parts, "connect-fail")
	}
	if f.NoRegistration {
		parts = append(parts, "no-registration")
	}
	add("lose-data", f.LoseDataAfterBytes)
	if f.SlowAnswers > 0 {
		parts = append(parts, "slow="+f.SlowAnswers.String())
	}
	switch {
	case f.SignalQuality == CSQWeakest:
		parts = append(parts, "csq=0")
	case f.SignalQuality > 0:
		add("csq", f.SignalQuality)
	}
	add("late-prompt", f.LatePromptOn)
	return strings.Join(parts, ",")
}

func (f Faults) validate() error {
	for _, n := range []int{f.RemoteCloseAfterBytes, f.HangAfterCommands, f.ErrorOnNth, f.GarbageEvery,
		f.RebootAfterCommands, f.PDPDeactAfterBytes, f.LoseDataAfterBytes, f.LatePromptOn} {
		if n < 0 {
			return fmt.Errorf("negative fault count %d: %w", n, ErrInvalidConfig)
		}
	}
	if !validCSQ(f.SignalQuality) {
		return fmt.Errorf("Faults.SignalQuality %d: %w", f.SignalQuality, ErrInvalidConfig)
	}
	return nil
}
