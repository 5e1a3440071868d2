package modemsim

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"time"
)

// Defaults applied to zero Config fields.
const (
	// DefaultSendLimit is the AT+CIPSEND? answer of a SIM7000 on a normal
	// network, and the hard ceiling of one CIPSEND.
	DefaultSendLimit = 1460
	// DefaultCSQ is the rssi reported by AT+CSQ (-73 dBm, a fair signal).
	DefaultCSQ = 20
	// CSQWeakest asks for rssi 0 (-115 dBm or less); 0 itself means "default".
	CSQWeakest = -1
	// CSQUnknown is the rssi the module reports without a detectable signal;
	// with it the module never registers.
	CSQUnknown = 99
	// DefaultRxBuffer is the per-link receive buffer of the module (the
	// AT+CIPRXGET=4 range 0-2920 suggests it).
	DefaultRxBuffer = 2920
	// DefaultVirtualIdle is how long, in real time, the host must stay silent
	// before the virtual clock jumps ahead to a pending network event.
	DefaultVirtualIdle = 20 * time.Millisecond
	// DefaultDialTimeout bounds the real TCP dial behind AT+CIPSTART.
	DefaultDialTimeout = 10 * time.Second
	// DefaultLocalIP is what AT+CIFSR reports.
	DefaultLocalIP = "10.78.245.128"

	maxSendLimit = 1460
)

// Config is the module the simulator plays: its timing model, its limits,
// the faults to inject and the answer variants to use. The zero value is a
// usable, unpaced module with no delays (the same as Fast).
type Config struct {
	// Baud paces the UART in both directions at 10 bits per byte (8N1).
	// 0 leaves the UART unpaced.
	Baud int
	// RoundTrip is the network round trip. It delays CONNECT OK, SEND OK in
	// normal send mode, TCP acknowledgements (AT+CIPACK) and the arrival of
	// data from the broker.
	RoundTrip time.Duration
	// AttachDelay is the time from AT+CFUN=1 (or boot) until the module
	// registers on the network.
	AttachDelay time.Duration
	// PDPDelay is how long AT+CIICR takes to activate the PDP context.
	PDPDelay time.Duration
	// ConnectExtra is added to RoundTrip before CONNECT OK (the TCP
	// handshake costs a bit more than one data round trip on a radio link).
	ConnectExtra time.Duration
	// UplinkRate is the air uplink in bytes per second, headers included.
	// 0 means unlimited.
	UplinkRate int
	// DownlinkRate is the air downlink in bytes per second. 0 means unlimited.
	DownlinkRate int
	// Turnaround is the module's processing time per AT command line.
	Turnaround time.Duration
	// BootDelay is the silence after power-on (PWRKEY) or a reset before
	// the module answers and prints its boot banner.
	BootDelay time.Duration
	// SendLimit is the AT+CIPSEND? answer and the largest accepted CIPSEND.
	// 0 means DefaultSendLimit; it may not exceed 1460.
	SendLimit int
	// CSQ is the rssi reported by AT+CSQ: 1..31 or 99. 0 means DefaultCSQ,
	// CSQWeakest reports 0. With CSQUnknown (99) the module never registers.
	CSQ int
	// VirtualClock makes modelled delays advance a virtual clock instead of
	// sleeping, so a long NB-IoT window runs in milliseconds while
	// Accounting still reports its modelled durations. See the package
	// documentation for the rules.
	VirtualClock bool
	// VirtualIdle is the real-time silence of the host after which the
	// virtual clock jumps to the next pending network event (data from the
	// broker, a remote close). 0 means DefaultVirtualIdle.
	VirtualIdle time.Duration
	// HostTime, with VirtualClock, charges the host's own waits: input that
	// comes after the host was silent for VirtualIdle or longer (real time)
	// since the module last said something, or last let a network event
	// happen, arrives that much virtual time later. Without it the host is
	// infinitely fast, and a driver that sleeps before polling pays nothing
	// for the sleep. Shorter silences are computation and stay free, so the
	// figures do not depend on the load of the machine running the test.
	HostTime bool

	// StartPoweredOff starts the module switched off; PowerOn boots it.
	// Otherwise Start returns a module that has booted, with its banner
	// already gone, echo on and the radio on (CFUN=1) since the start.
	StartPoweredOff bool
	// StartRadioOff starts a booted module in minimum functionality
	// (CFUN=0), as a previous window would have left it.
	StartRadioOff bool
	// NoBootBanner suppresses RDY, +CFUN: 1, +CPIN: READY and SMS Ready after
	// a boot.
	NoBootBanner bool
	// Autobaud plays a module left at AT+IPR=0: after each boot it ignores
	// input until it sees "AT", drops that first line (it only served to
	// detect the rate), and prints no boot banner. The host must repeat AT
	// until it gets OK.
	Autobaud bool
	// RxBuffer is the receive buffer of the link in bytes. 0 means
	// DefaultRxBuffer.
	RxBuffer int
	// LocalIP is what AT+CIFSR reports. Empty means DefaultLocalIP.
	LocalIP string
	// Dialer opens the real TCP connection behind AT+CIPSTART. nil uses a
	// net.Dialer with DialTimeout.
	Dialer func(ctx context.Context, network, address string) (net.Conn, error)
	// DialTimeout bounds a real dial in wall-clock time. 0 means
	// DefaultDialTimeout.
	DialTimeout time.Duration

	// Variants selects between answer forms that differ between firmware
	// builds and documents, so drivers can be tested against each.
	Variants Variants
	// Faults selects the failures to inject.
	Faults Faults
	// Logger receives the dialog at debug level (APN credentials are never
	// logged). nil discards.
	Logger *slog.Logger
}

// Fast is the unit-test profile: unpaced UART and no modelled delays.
func Fast() Config {
	return Config{SendLimit: DefaultSendLimit, CSQ: DefaultCSQ}
}

// NBIoT is the nbiot column of performance-model.md §2: 115200 baud,
// 1 s round trip, 5 s registration, 1 s PDP activation, 1.2 s TCP connect,
// 2500/2000 B/s air up/down, 50 ms per command and a 4 s boot. It runs in
// real time; set VirtualClock to measure a window without waiting for it.
func NBIoT() Config {
	return Config{
		Baud:         115200,
		RoundTrip:    time.Second,
		AttachDelay:  5 * time.Second,
		PDPDelay:     time.Second,
		ConnectExtra: 200 * time.Millisecond,
		UplinkRate:   2500,
		DownlinkRate: 2000,
		Turnaround:   50 * time.Millisecond,
		BootDelay:    4 * time.Second,
		SendLimit:    DefaultSendLimit,
		CSQ:          DefaultCSQ,
	}
}

// LTEM is the ltem (Cat-M1) column of performance-model.md §2: 115200 baud,
// 0.15 s round trip, 3 s registration, 1 s PDP activation, 25000 B/s air
// both ways, 50 ms per command and a 4 s boot.
func LTEM() Config {
	return Config{
		Baud:         115200,
		RoundTrip:    150 * time.Millisecond,
		AttachDelay:  3 * time.Second,
		PDPDelay:     time.Second,
		ConnectExtra: 200 * time.Millisecond,
		UplinkRate:   25000,
		DownlinkRate: 25000,
		Turnaround:   50 * time.Millisecond,
		BootDelay:    4 * time.Second,
		SendLimit:    DefaultSendLimit,
		CSQ:          DefaultCSQ,
	}
}

// ProfileNames lists the names ProfileByName accepts.
func ProfileNames() []string { return []string{"fast", "nbiot", "ltem"} }

// ProfileByName returns the profile called name ("fast", "nbiot", "ltem").
func ProfileByName(name string) (Config, error) {
	switch name {
	case "fast":
		return Fast(), nil
	case "nbiot":
		return NBIoT(), nil
	case "ltem":
		return LTEM(), nil
	}
	return Config{}, fmt.Errorf("profile %q (want one of %v): %w", name, ProfileNames(), ErrUnknownProfile)
}

// validate reports the first out-of-range field.
func (c Config) validate() error {
	durations := []struct {
		name string
		d    time.Duration
	}{
		{"RoundTrip", c.RoundTrip}, {"AttachDelay", c.AttachDelay}, {"PDPDelay", c.PDPDelay},
		{"ConnectExtra", c.ConnectExtra}, {"Turnaround", c.Turnaround}, {"BootDelay", c.BootDelay},
		{"VirtualIdle", c.VirtualIdle}, {"DialTimeout", c.DialTimeout},
		{"Faults.SlowAnswers", c.Faults.SlowAnswers},
	}
	for _, d := range durations {
		if d.d < 0 {
			return fmt.Errorf("%s %v is negative: %w", d.name, d.d, ErrInvalidConfig)
		}
	}
	ints := []struct {
		name string
		v    int
	}{
		{"Baud", c.Baud}, {"UplinkRate", c.UplinkRate}, {"DownlinkRate", c.DownlinkRate},
		{"SendLimit", c.SendLimit}, {"RxBuffer", c.RxBuffer},
	}
	for _, i := range ints {
		if i.v < 0 {
			return fmt.Errorf("%s %d is negative: %w", i.name, i.v, ErrInvalidConfig)
		}
	}
	if c.SendLimit > maxSendLimit {
		return fmt.Errorf("SendLimit %d above %d: %w", c.SendLimit, maxSendLimit, ErrInvalidConfig)
	}
	if !validCSQ(c.CSQ) {
		return fmt.Errorf("CSQ %d (want 1..31, 99 or CSQWeakest): %w", c.CSQ, ErrInvalidConfig)
	}
	if err := c.Faults.validate(); err != nil {
		return err
	}
	return c.Variants.validate()
}

func validCSQ(v int) bool {
	return v == 0 || v == CSQWeakest || v == CSQUnknown || (v >= 1 && v <= 31)
}

// withDefaults fills zero fields.
func (c Config) withDefaults() Config {
	if c.SendLimit == 0 {
		c.SendLimit = DefaultSendLimit
	}
	if c.CSQ == 0 {
		c.CSQ = DefaultCSQ
	}
	if c.RxBuffer == 0 {
		c.RxBuffer = DefaultRxBuffer
	}
	if c.VirtualIdle == 0 {
		c.VirtualIdle = DefaultVirtualIdle
	}
	if c.DialTimeout == 0 {
		c.DialTimeout = DefaultDialTimeout
	}
	if c.LocalIP == "" {
		c.LocalIP = DefaultLocalIP
	}
	if c.Dialer == nil {
		c.Dialer = (&net.Dialer{}).DialContext
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}
