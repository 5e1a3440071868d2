package uplink

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
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

	// StatusTopic, when set, gets a retained StatusRecord right after each
	// CONNACK; WillTopic, when set, the retained will the broker publishes
	// if the window ends without DISCONNECT. cmd/uploader defaults both to
	// "uploader/<client-id>/status".
	StatusTopic string
	WillTopic   string
	// NextContact, when set, tells the status record when the site will
	// next be heard (the daemon's next regular slot).
	NextContact func() time.Time

	// MinCSQ and MinVoltageMV (0: off) defer a window whose signal (after
	// registration) or supply (before the radio goes on) is below them: the
	// radio goes off again at once (ErrDeferred). After MaxDeferral of
	// deferrals in a row a window goes anyway (0: never).
	MinCSQ       int
	MinVoltageMV int
	MaxDeferral  time.Duration

	// Pack, when PackDeflate, sends readings in packs (packstore.go,
	// package uplink/pack) on PackTopic, each at most PackMaxBytes long
	// (0: DefaultPackMaxBytes). cmd/uploader defaults PackTopic to
	// "uploader/<client-id>/pack".
	Pack         PackMode
	PackTopic    string
	PackMaxBytes int

	// Downlink (inbox.go): with Subscriptions the session is persistent
	// and what the broker holds for the site is stored in the queue
	// file's inbox.
	Subscriptions []codec.Subscription
	// SessionExpiry is the MQTT 5 Session Expiry Interval (whole seconds,
	// at most 2^32-1 s); cmd/uploader defaults it from the schedule.
	SessionExpiry time.Duration
	// DownlinkWait bounds how long a window waits for deliveries after
	// SUBACK (or CONNACK); it usually ends after one round trip.
	DownlinkWait time.Duration
	// InboxMaxBytes bounds the inbox's topic+payload bytes (0 = no bound).
	InboxMaxBytes int64
	// InboxHook is a shell command run after the window, radio off, once
	// per inbox message; InboxHookAttempts caps its failures per message
	// (0 = DefaultInboxHookAttempts) and InboxHookTimeout bounds one run
	// (0 = DefaultInboxHookTimeout).
	InboxHook         string
	InboxHookAttempts int
	InboxHookTimeout  time.Duration
	// DataBudget caps the estimated air bytes of a calendar month (UTC);
	// 0: no budget. See budget.go: over it windows pack, then defer.
	DataBudget int64
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
		InFlight:            256,
		ReplyTimeout:        30 * time.Second,
		WindowTimeout:       10 * time.Minute,
		DownlinkWait:        DefaultDownlinkWait,
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
		if err := c.validateATStrings(); err != nil {
			return bad("%v", err)
		}
	case TransportTCP:
	default:
		return bad("unknown --transport %q (use modem or tcp)", c.Transport)
	}
	if err := validateBroker(c.Broker, c.Transport); err != nil {
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
	if c.MinCSQ < 0 || c.MinCSQ > 31 {
		return bad("--min-csq %d is outside 0..31", c.MinCSQ)
	}
	if c.MinVoltageMV < 0 || c.MinVoltageMV > 10000 {
		return bad("--min-voltage-mv %d is outside 0..10000", c.MinVoltageMV)
	}
	if c.MaxDeferral < 0 {
		return bad("--max-deferral is negative")
	}
	for _, t := range []struct{ flag, topic string }{{"--status-topic", c.StatusTopic}, {"--will-topic", c.WillTopic}} {
		if t.topic == "" {
			continue
		}
		if err := codec.ValidateTopicName(t.topic); err != nil {
			return bad("%s: %v", t.flag, err)
		}
	}
	if err := c.TLS.validate(); err != nil {
		return bad("%v", err)
	}
	if err := c.validateDownlink(); err != nil {
		return bad("%v", err)
	}
	return c.validatePack()
}

func (c *Config) validatePack() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalidConfig, fmt.Sprintf(format, args...))
	}
	if c.DataBudget < 0 {
		return bad("--data-budget %d is negative", c.DataBudget)
	}
	if c.DataBudget > 0 && c.PackTopic != "" {
		if err := codec.ValidateTopicName(c.PackTopic); err != nil {
			return bad("--pack-topic %q: %v", c.PackTopic, err)
		}
	}
	switch c.Pack {
	case "", PackNone, PackDeflate:
	default:
		return bad("unknown --pack %q (use none or deflate)", c.Pack)
	}
	if c.PackMaxBytes != 0 && (c.PackMaxBytes < MinPackMaxBytes || c.PackMaxBytes > MaxPackMaxBytes) {
		return bad("--pack-max-bytes %d is outside %d..%d", c.PackMaxBytes, MinPackMaxBytes, MaxPackMaxBytes)
	}
	if c.Pack == PackDeflate {
		if err := codec.ValidateTopicName(c.PackTopic); err != nil {
			return bad("--pack-topic %q: %v", c.PackTopic, err)
		}
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

// Limits of the strings the SIM7000 takes on a command line: AT+CSTT
// takes at most 50 bytes per string, and 255 is the driver's bound for the
// AT+CIPSTART host (modem.quoteArg).
const (
	maxAPNString = 50
	maxModemHost = 255
)

// validateATStrings checks the strings that go, quoted, on an AT command
// line (AT+CSTT="apn","user","password") or as AT+CBANDCFG's parameters,
// before the radio goes on: the module would only refuse them after
// registration, minutes of radio time later.
func (c *Config) validateATStrings() error {
	for _, f := range []struct {
		flag, value string
		secret      bool
	}{
		{"--apn", c.APN, false},
		{"--apn-user", c.APNUser, false},
		{"--apn-password", c.APNPassword, true},
	} {
		if err := checkATString(f.flag, f.value, maxAPNString, f.secret); err != nil {
			return err
		}
	}
	if c.APN == "" && (c.APNUser != "" || c.APNPassword != "") {
		// The exec form AT+CSTT, the only one without an APN, takes no
		// credentials.
		return errors.New("--apn-user and --apn-password need --apn")
	}
	if b := c.NetworkMode.Bands; b != "" {
		// Sent unquoted after AT+CBANDCFG=; its own quotes are part of it.
		for i := 0; i < len(b); i++ {
			if ch := b[i]; ch < 0x20 || ch > 0x7e {
				return fmt.Errorf("--bands %q: byte %d (%s) cannot be sent on an AT command line (printable ASCII only)", b, i+1, describeByte(ch))
			}
		}
	}
	return nil
}

// checkATString reports a value the module cannot take as a quoted AT
// string parameter: the AT parser has no escapes, so a double quote would
// end the string and CR or LF the command; other control bytes and
// anything outside 7-bit ASCII (the module's IRA character set) are not
// passed through reliably. A secret's value is never put in the error.
func checkATString(flag, value string, maxLen int, secret bool) error {
	shown := fmt.Sprintf(" %q", value)
	if secret {
		shown = ""
	}
	if len(value) > maxLen {
		return fmt.Errorf("%s%s is %d bytes long; the module takes at most %d", flag, shown, len(value), maxLen)
	}
	for i := 0; i < len(value); i++ {
		ch := value[i]
		switch {
		case ch == '"':
			return fmt.Errorf("%s%s contains a double quote (byte %d), which cannot be sent inside a quoted AT string", flag, shown, i+1)
		case ch < 0x20 || ch > 0x7e:
			return fmt.Errorf("%s%s: byte %d (%s) cannot be sent in an AT string (printable ASCII only)", flag, shown, i+1, describeByte(ch))
		}
	}
	return nil
}

func describeByte(ch byte) string {
	switch {
	case ch == '\r':
		return "carriage return"
	case ch == '\n':
		return "line feed"
	case ch < 0x20 || ch == 0x7f:
		return fmt.Sprintf("control byte 0x%02x", ch)
	default:
		return fmt.Sprintf("non-ASCII byte 0x%02x", ch)
	}
}

// validateBroker parses host:port. The host must be an IP address or a
// DNS name (letters, digits, '-', '_' and dots); with the modem transport
// it also goes, quoted, on the AT+CIPSTART line.
func validateBroker(broker string, transport Transport) error {
	if broker == "" {
		return errors.New("--broker is empty (want host:port)")
	}
	host, port, err := net.SplitHostPort(broker)
	if err != nil {
		// net's error repeats the address unquoted, line breaks and all.
		reason := "unparsable"
		var ae *net.AddrError
		if errors.As(err, &ae) {
			reason = ae.Err
		}
		return fmt.Errorf("--broker %q: want host:port (%s)", broker, reason)
	}
	if host == "" {
		return fmt.Errorf("--broker %q has no host", broker)
	}
	if _, err := parsePort(port); err != nil {
		return fmt.Errorf("--broker %q: %w", broker, err)
	}
	addr, ipErr := netip.ParseAddr(host)
	switch {
	case ipErr == nil && transport == TransportModem && addr.Zone() != "":
		return fmt.Errorf("--broker %q: the modem cannot use an IPv6 zone (%%%s)", broker, addr.Zone())
	case ipErr == nil:
	default:
		if err := checkHostName(host); err != nil {
			return fmt.Errorf("--broker %q: %w", broker, err)
		}
	}
	if transport == TransportModem {
		if err := checkATString("--broker host", host, maxModemHost, false); err != nil {
			return err
		}
	}
	return nil
}

// checkHostName accepts DNS names: dot-separated labels of 1..63 letters,
// digits, '-' or '_' (found in real service names), 253 bytes in all, an
// optional final dot.
func checkHostName(host string) error {
	name := strings.TrimSuffix(host, ".")
	if len(name) > 253 {
		return fmt.Errorf("host name is %d bytes long; DNS allows 253", len(name))
	}
	for i := 0; i < len(name); i++ {
		ch := name[i]
		if !('a' <= ch && ch <= 'z' || 'A' <= ch && ch <= 'Z' || '0' <= ch && ch <= '9' || ch == '-' || ch == '_' || ch == '.') {
			return fmt.Errorf("host %q is neither an IP address nor a host name (%s at byte %d)", host, describeHostByte(ch), i+1)
		}
	}
	for label := range strings.SplitSeq(name, ".") {
		if label == "" {
			return fmt.Errorf("host %q has an empty label", host)
		}
		if len(label) > 63 {
			return fmt.Errorf("host %q: label %q is longer than 63 bytes", host, label)
		}
	}
	return nil
}

func describeHostByte(ch byte) string {
	if ch >= 0x21 && ch <= 0x7e {
		return fmt.Sprintf("%q", ch)
	}
	if ch == ' ' {
		return "a space"
	}
	return describeByte(ch)
}

func parsePort(s string) (int, error) {
	p, err := strconv.Atoi(s)
	if err != nil || p < 1 || p > 65535 {
		return 0, fmt.Errorf("port %q is not a number in 1..65535", s)
	}
	return p, nil
}
