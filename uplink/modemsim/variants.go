package modemsim

import (
	"fmt"
	"strings"
	"time"
)

// RxURCPolicy says when the module announces received data with
// "+CIPRXGET: 1" in manual receive mode. The reference leaves the exact
// repeat policy open (sim7000-at.md §8.2, §13 item 8), so drivers should be
// tested against all four.
type RxURCPolicy int

const (
	// RxURCOnce announces data arriving into an empty buffer (the default).
	RxURCOnce RxURCPolicy = iota
	// RxURCNever never announces; the host must poll with AT+CIPRXGET=4.
	RxURCNever
	// RxURCEvery announces every arrival, even into a non-empty buffer.
	RxURCEvery
	// RxURCRepeat announces every arrival and repeats the announcement
	// every Variants.RxURCRepeatEvery while data waits unread, until the
	// host's next AT+CIPRXGET=2/3.
	RxURCRepeat
)

// DefaultRxURCRepeatEvery is the interval of RxURCRepeat when
// Variants.RxURCRepeatEvery is 0.
const DefaultRxURCRepeatEvery = time.Second

var rxURCNames = map[RxURCPolicy]string{RxURCOnce: "once", RxURCNever: "never", RxURCEvery: "every", RxURCRepeat: "repeat"}

// RxURCPolicies lists every policy, the default first.
func RxURCPolicies() []RxURCPolicy {
	return []RxURCPolicy{RxURCOnce, RxURCEvery, RxURCRepeat, RxURCNever}
}

// ParseRxURCPolicy parses a policy name: once, every, repeat or never.
func ParseRxURCPolicy(name string) (RxURCPolicy, error) {
	for p, n := range rxURCNames {
		if n == strings.ToLower(strings.TrimSpace(name)) {
			return p, nil
		}
	}
	return 0, fmt.Errorf("receive URC policy %q (want once, every, repeat or never): %w", name, ErrFaultSpec)
}

func (p RxURCPolicy) String() string {
	if s, ok := rxURCNames[p]; ok {
		return s
	}
	return fmt.Sprintf("RxURCPolicy(%d)", int(p))
}

// Variants picks between answer forms seen on different firmware builds or
// in different documents (sim7000-at.md §5, §6, §10, §14). The zero value
// is the form a SIM7000 sends according to the reference.
type Variants struct {
	// URCInsideAnswers injects "+CIPRXGET: 1" inside the answers of
	// AT+CIPRXGET=2/3/4 and AT+CIPSTATUS while unread data is buffered, as
	// SIM7000 firmware does (TinyGSM #628, #803).
	URCInsideAnswers bool
	// CIFSRWithOK appends OK to the AT+CIFSR answer (the module sends only
	// the address).
	CIFSRWithOK bool
	// CIPSTATUSOKLast sends STATE before OK (the module sends OK first).
	CIPSTATUSOKLast bool
	// DataAcceptSpace sends "DATA ACCEPT: <n>" instead of "DATA ACCEPT:<n>".
	DataAcceptSpace bool
	// AlreadyConnectError sends ERROR before ALREADY CONNECT (SIM800 form).
	AlreadyConnectError bool
	// ConnectFailState sends "STATE: IP STATUS" before CONNECT FAIL.
	ConnectFailState bool
	// RxURC is the "+CIPRXGET: 1" repeat policy.
	RxURC RxURCPolicy
	// RxURCRepeatEvery is the repeat interval of RxURCRepeat; 0 means
	// DefaultRxURCRepeatEvery.
	RxURCRepeatEvery time.Duration
}

// ParseVariants parses a comma-separated list of variant names:
// urc-inside, cifsr-ok, cipstatus-ok-last, data-accept-space,
// already-connect-error, connect-fail-state, rx-urc=once|every|repeat|never.
func ParseVariants(spec string) (Variants, error) {
	var v Variants
	flags := map[string]*bool{
		"urc-inside":            &v.URCInsideAnswers,
		"cifsr-ok":              &v.CIFSRWithOK,
		"cipstatus-ok-last":     &v.CIPSTATUSOKLast,
		"data-accept-space":     &v.DataAcceptSpace,
		"already-connect-error": &v.AlreadyConnectError,
		"connect-fail-state":    &v.ConnectFailState,
	}
	for item := range strings.SplitSeq(spec, ",") {
		item = strings.ToLower(strings.TrimSpace(item))
		if item == "" {
			continue
		}
		if p, ok := flags[item]; ok {
			*p = true
			continue
		}
		if policy, ok := strings.CutPrefix(item, "rx-urc="); ok {
			if p, err := ParseRxURCPolicy(policy); err == nil {
				v.RxURC = p
				continue
			}
		}
		return Variants{}, fmt.Errorf("variant %q (known: urc-inside, cifsr-ok, cipstatus-ok-last, "+
			"data-accept-space, already-connect-error, connect-fail-state, rx-urc=once|every|repeat|never): %w",
			item, ErrFaultSpec)
	}
	return v, nil
}

func (v Variants) validate() error {
	if _, ok := rxURCNames[v.RxURC]; !ok {
		return fmt.Errorf("Variants.RxURC %d: %w", int(v.RxURC), ErrInvalidConfig)
	}
	if v.RxURCRepeatEvery < 0 {
		return fmt.Errorf("Variants.RxURCRepeatEvery %v is negative: %w", v.RxURCRepeatEvery, ErrInvalidConfig)
	}
	return nil
}
