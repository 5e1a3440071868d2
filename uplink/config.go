package uplink

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"time"

	"github.com/nbiot-uploader/uploader/codec"
	"github.com/nbiot-uploader/uploader/uplink/modem"
)

// Transport names how the TCP connection to the broker is made.
type Transport string

const (
	// TransportModem opens the connection through the SIM7000's TCP stack.
	TransportModem Transport = "modem"
	// TransportTCP uses the host's own network (ethernet, Wi-Fi, PPP).
	TransportTCP Transport = "tcp"
)

// StandardBauds are the rates the SIM7000 autobauds to or can be fixed at
// with AT+IPR; anything else is almost certainly a typo in a config file.
var StandardBauds = []int{9600, 19200, 38400, 57600, 115200, 230400, 460800, 921600}

// Config is everything one window needs. The zero value is not usable:
// fill it (cmd/uploader does) and call Validate, or start from Defaults.
type Config struct {
	Transport Transport

	// Modem transport.
	Device              string
	Baud                int
	APN                 string
	APNUser             string
	APNPassword         string
	NetworkMode         modem.NetworkMode
	RegistrationTimeout time.Duration
	SendLimit           int  // cap on bytes per AT+CIPSEND; 0 = what the module reports
	NormalSend          bool // AT+CIPQSEND=0: wait for SEND OK after every chunk (slower; for old firmware)
	Power               PowerCommands
	ModemLockTimeout    time.Duration // how long to wait for another process holding the modem (0: do not wait)

	// Broker and MQTT session.
	Broker       string // host:port
	TLS          TLSConfig
	MQTTVersion  codec.Version
	ClientID     string
	Username     string
	Password     []byte
	KeepAlive    uint16
	InFlight     int
	ReplyTimeout time.Duration
	MaxRecords   int // 0 = drain everything queued
	// NoSeq leaves out the MQTT 5 user property "seq" (each record's
	// sequence number), about 11 bytes per reading; consumers then cannot
	// de-duplicate at-least-once deliveries.
	NoSeq bool

	// WindowTimeout is the hard deadline for the whole window, radio off included.
	WindowTimeout time.Duration

	// LockPath is the modem lock file; cmd/uploader puts it beside the
	// queue. The mid-packet mark sits beside it.
	LockPath string

	Logger *slog.Logger
	// Trace, when set, receives every AT line in and out (secrets redacted).
	Trace *slog.Logger
	// Progress, when set, is called as records are acknowledged.
	Progress func(Progress)

	// Holder describes the process for the busy message another window
	// or modem user prints ("uploader flush"); default "uploader window".
	Holder string
	// EmptyWindow says what a window does when nothing is queued.
	EmptyWindow EmptyWindowPolicy
}

// EmptyWindowPolicy says whether a window with nothing queued brings the
// radio up.
type EmptyWindowPolicy string

const (
	// EmptySkip (the default, also for "") does not switch the radio on
	// when nothing is queued: nothing else is due in a window yet.
	EmptySkip EmptyWindowPolicy = "skip"
	// EmptyConnect runs the whole window anyway (a site that must be seen
	// by its broker every window).
	EmptyConnect EmptyWindowPolicy = "connect"
)

// Progress is reported while a window drains.
type Progress struct {
	Queued   int
	Sent     int
	Acked    int
	BytesOut int64
	Elapsed  time.Duration
}

// Defaults returns a Config with the values a site operator gets when they
// set nothing.
func Defaults() Config {
	return Config{
		Transport:           TransportModem,
		Device:              "/dev/ttyS1",
		Baud:                115200,
		APN:                 "",
		RegistrationTimeout: 3 * time.Minute,
		ModemLockTimeout:    30 * time.Second,
		MQTTVersion:         codec.V311,
		KeepAlive:           60,
		InFlight:            64,
		ReplyTimeout:        30 * time.Second,
		WindowTimeout:       10 * time.Minute,
	}
}

// ErrInvalidConfig is wrapped by every Validate error.
var ErrInvalidConfig = errors.New("invalid configuration")

// Validate checks every value and names the first one that is wrong.
func (c *Config) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalidConfig, fmt.Sprintf(format, args...))
	}
	switch c.EmptyWindow {
	case "", EmptySkip, EmptyConnect:
	default:
		return bad("unknown --empty-window %q (use skip or connect)", c.EmptyWindow)
	}
	switch c.Transport {
	case TransportModem:
		if err := c.validateModem(); err != nil {
			return err
		}
		if c.RegistrationTimeout <= 0 {
			return bad("--registration-timeout must be positive")
		}
		if c.SendLimit < 0 || c.SendLimit > 1460 {
			return bad("--send-limit %d is outside 0..1460", c.SendLimit)
		}
		if c.KeepAlive == 0 {
			// A window that dies mid-PUBLISH leaves the module's connection
			// open; only the broker's keep-alive ends it (ModemLock.AwaitMidPacket).
			return bad("--keepalive 0 is not allowed with the modem transport: the broker must drop connections a dead window leaves open (use 1..65535 s)")
		}
	case TransportTCP:
	default:
		return bad("unknown --transport %q (use modem or tcp)", c.Transport)
	}
	if err := validateBroker(c.Broker); err != nil {
		return bad("%v", err)
	}
	switch c.MQTTVersion {
	case codec.V31, codec.V311, codec.V5:
	default:
		return bad("unknown --mqtt-version %d (use 3.1, 3.1.1 or 5)", c.MQTTVersion)
	}
	if c.ClientID == "" {
		return bad("--client-id is empty")
	}
	if c.MQTTVersion == codec.V31 && len(c.ClientID) > 23 {
		return bad("--client-id %q is longer than the 23 bytes MQTT 3.1 allows", c.ClientID)
	}
	if c.InFlight < 1 || c.InFlight > 65535 {
		return bad("--inflight %d is outside 1..65535", c.InFlight)
	}
	if c.WindowTimeout <= 0 {
		return bad("--window-timeout must be positive")
	}
	if c.ReplyTimeout <= 0 {
		return bad("--reply-timeout must be positive")
	}
	if err := c.TLS.validate(); err != nil {
		return bad("%v", err)
	}
	return nil
}

func isStandardBaud(b int) bool {
	for _, s := range StandardBauds {
		if b == s {
			return true
		}
	}
	return false
}

func validateBroker(broker string) error {
	if broker == "" {
		return errors.New("--broker is empty (want host:port)")
	}
	host, port, err := net.SplitHostPort(broker)
	if err != nil {
		return fmt.Errorf("--broker %q: want host:port (%v)", broker, err)
	}
	if host == "" {
		return fmt.Errorf("--broker %q has no host", broker)
	}
	if _, err := parsePort(port); err != nil {
		return fmt.Errorf("--broker %q: %v", broker, err)
	}
	return nil
}

func parsePort(s string) (int, error) {
	p, err := strconv.Atoi(s)
	if err != nil || p < 1 || p > 65535 {
		return 0, fmt.Errorf("port %q is not a number in 1..65535", s)
	}
	return p, nil
}
