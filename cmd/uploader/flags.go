package main

import (
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/nbiot-uploader/uploader/codec"
	"github.com/nbiot-uploader/uploader/queue"
	"github.com/nbiot-uploader/uploader/uplink"
	"github.com/nbiot-uploader/uploader/uplink/modem"
)

// defaultStatusTopic is where a site's status record and will go.
const defaultStatusTopic = "uploader/{client-id}/status"

// defaultDB is where the queue lives on a board.
const defaultDB = "/var/lib/uploader/queue.db"

// envName gives the environment variable of a flag: --apn-user is
// UPLOADER_APN_USER.
func envName(flag string) []string {
	return []string{"UPLOADER_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))}
}

func strFlag(name, value, usage string) cli.Flag {
	return &cli.StringFlag{Name: name, Value: value, Usage: usage, EnvVars: envName(name)}
}

func intFlag(name string, value int, usage string) cli.Flag {
	return &cli.IntFlag{Name: name, Value: value, Usage: usage, EnvVars: envName(name)}
}

func int64Flag(name string, value int64, usage string) cli.Flag {
	return &cli.Int64Flag{Name: name, Value: value, Usage: usage, EnvVars: envName(name)}
}

func boolFlag(name, usage string) cli.Flag {
	return &cli.BoolFlag{Name: name, Usage: usage, EnvVars: envName(name)}
}

func durFlag(name string, value time.Duration, usage string) cli.Flag {
	return &cli.DurationFlag{Name: name, Value: value, Usage: usage, EnvVars: envName(name)}
}

// commonFlags every command has.
func commonFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "config", Usage: "configuration file (YAML, or TOML when it ends in .toml); keys are the flag names", EnvVars: envName("config")},
		strFlag("db", defaultDB, "queue database file (bbolt); the modem lock file sits beside it"),
		strFlag("log-level", "info", "log level: debug, info, warn or error"),
	}
}

// queueFlags bound the queue; they matter wherever records are written.
func queueFlags() []cli.Flag {
	return []cli.Flag{
		int64Flag("max-records", 0, "keep at most this many records queued (0 = no limit)"),
		int64Flag("max-bytes", 0, "keep at most this many topic+payload bytes queued (0 = no limit)"),
		strFlag("queue-policy", "drop-oldest", "when a limit is reached: drop-oldest (counted in status) or reject-new"),
		durFlag("queue-busy-timeout", 30*time.Second, "how long to wait for another process holding the queue before failing"),
	}
}

// modemFlags are what every command that talks to the module needs: the
// port, the power switch and the lock shared with the other processes.
func modemFlags() []cli.Flag {
	return []cli.Flag{
		strFlag("device", "/dev/ttyS1", "the modem's serial port"),
		intFlag("baud", 115200, "serial rate: 9600, 19200, 38400, 57600, 115200 (or a fixed higher AT+IPR rate)"),
		strFlag("power-on-cmd", "", "shell command that powers the module on (PWRKEY/GPIO); with --power-off-cmd a hung module is power-cycled"),
		strFlag("power-off-cmd", "", "shell command that powers the module off (AT+CPOWD=1 is sent first)"),
		durFlag("boot-wait", 5*time.Second, "how long the module needs after --power-on-cmd before it answers AT"),
		durFlag("modem-lock-timeout", 30*time.Second, "how long to wait for another process using the modem"),
		boolFlag("trace", "log every AT line in and out at debug level (passwords redacted)"),
	}
}

// modemConfig fills the modem part of an uplink.Config from modemFlags.
func modemConfig(c *cli.Context, cfg *uplink.Config) error {
	cfg.Device = c.String("device")
	cfg.Baud = c.Int("baud")
	cfg.Power = uplink.PowerCommands{On: c.String("power-on-cmd"), Off: c.String("power-off-cmd"), BootWait: c.Duration("boot-wait")}
	if (cfg.Power.On == "") != (cfg.Power.Off == "") {
		return usagef("--power-on-cmd and --power-off-cmd go together")
	}
	cfg.ModemLockTimeout = c.Duration("modem-lock-timeout")
	cfg.LockPath = modemLockPath(c)
	return nil
}

// windowFlags configure the modem, the broker and MQTT.
func windowFlags() []cli.Flag {
	return concat(modemFlags(), []cli.Flag{
		strFlag("transport", "modem", "how to reach the broker: modem (SIM7000 over --device) or tcp (the host's own network)"),
		strFlag("empty-window", "skip", "with nothing queued: skip (leave the radio off) or connect (run the window anyway)"),
		strFlag("apn", "", "access point name of the SIM's operator"),
		strFlag("apn-user", "", "APN user name, when the operator needs one"),
		strFlag("apn-password", "", "APN password, when the operator needs one (never logged)"),
		intFlag("network-mode", 0, "AT+CNMP: 2 automatic, 13 GSM only, 38 LTE only, 51 GSM and LTE (0 = leave as is)"),
		intFlag("lte-category", 0, "AT+CMNB: 1 Cat-M, 2 NB-IoT, 3 both (0 = leave as is)"),
		strFlag("bands", "", `AT+CBANDCFG argument, e.g. "NB-IOT",8,20 (empty = leave as is)`),
		durFlag("registration-timeout", 3*time.Minute, "longest wait for network registration after the radio goes on"),
		intFlag("send-limit", 0, "cap on bytes per AT+CIPSEND (0 = what the module reports, at most 1460)"),
		boolFlag("normal-send", "wait for SEND OK after every chunk (AT+CIPQSEND=0) instead of pipelined quick send"),

		strFlag("broker", "", "MQTT broker as host:port"),
		strFlag("client-id", defaultClientID(), "MQTT client id (also seeds the schedule jitter)"),
		strFlag("username", "", "MQTT user name"),
		strFlag("password", "", "MQTT password (prefer --password-file; never logged)"),
		strFlag("password-file", "", "file holding the MQTT password (trailing newline ignored)"),
		strFlag("mqtt-version", "3.1.1", "MQTT protocol: 3.1, 3.1.1 or 5"),
		intFlag("keepalive", 60, "MQTT keepalive in seconds"),
		boolFlag("no-seq", `MQTT 5: leave out the user property "seq" (each record's sequence number), about 11 bytes per reading; consumers can then not drop duplicates`),
		intFlag("inflight", 256, "most unacknowledged QoS 1/2 messages at once (MQTT 5: also bounded by the broker's Receive Maximum; within it the window is sized to the measured bandwidth-delay product)"),
		durFlag("reply-timeout", 30*time.Second, "longest wait for any broker reply (CONNACK, PUBACK, PINGRESP)"),
		boolFlag("tls", "use TLS to the broker (Go's crypto/tls, over either transport)"),
		strFlag("ca-file", "", "PEM file of CA certificates to trust (default: the system's)"),
		strFlag("cert-file", "", "PEM client certificate for mutual TLS"),
		strFlag("key-file", "", "PEM private key for --cert-file (never logged)"),
		strFlag("server-name", "", "TLS server name when it differs from the broker host"),
		boolFlag("tls-hybrid-kex", "offer the hybrid post-quantum key exchange X25519MLKEM768 (about 2.3 KB and, on NB-IoT, a second of radio time more per full or resumed handshake; default: X25519, then P-256)"),
		boolFlag("tls-no-resume", "full TLS handshake in every window: do not resume the last window's session (stored in the queue file) nor keep one"),
		durFlag("window-timeout", 10*time.Minute, "hard deadline for one whole window"),
		intFlag("window-records", 0, "send at most this many records per window (0 = everything queued)"),
		intFlag("min-csq", 0, "defer a window whose signal after registration is below this CSQ (radio off again at once; 0 = off)"),
		intFlag("min-voltage-mv", 0, "defer a window whose supply (AT+CBC) is below this many millivolts, before the radio goes on (0 = off)"),
		durFlag("max-deferral", 24*time.Hour, "after deferring windows this long in a row, go anyway (0 = defer without limit)"),
		strFlag("status-topic", defaultStatusTopic, "retained status record published right after CONNACK ({client-id} is replaced; empty: none)"),
		strFlag("will-topic", defaultStatusTopic, "retained last will if a window ends without DISCONNECT ({client-id} is replaced; empty: none, and the window does not wait for its DISCONNECT to be acknowledged)"),
	}, packFlags(), downlinkFlags())
}

// scheduleFlags configure the daemon's windows.
func scheduleFlags() []cli.Flag {
	return []cli.Flag{
		strFlag("schedule", "", `cron spec of the windows: 5 fields, an optional leading seconds field, or @hourly, @every 15m ...`),
		durFlag("jitter", 0, "cap the spread of windows after each scheduled instant (default: the schedule's whole interval, a stable slot per client id; 0 set explicitly: no spread)"),
		strFlag("slot", "", "place this site exactly: I/N starts site I of N at I*interval/N (a perfectly even fleet)"),
		boolFlag("random-jitter", "draw the jitter at random for every window instead of a stable per-site slot"),
		int64Flag("early-depth", 0, "start a window early once this many records are queued (0 = off)"),
	}
}

// modemLockPath is the modem lock file of the queue --db names: every
// process that talks to the modem takes it, and it carries the mid-packet
// mark a dead window leaves (uplink.ModemLock).
func modemLockPath(c *cli.Context) string { return c.String("db") + ".modem.lock" }

func defaultClientID() string {
	h, _ := os.Hostname()
	mid, _ := os.ReadFile("/etc/machine-id")
	return uplink.DefaultClientID(h, string(mid))
}

func concat(groups ...[]cli.Flag) []cli.Flag {
	var all []cli.Flag
	for _, g := range groups {
		all = append(all, g...)
	}
	return all
}

// command builds a subcommand whose flags also come from env and --config.
func command(name, usage, argsUsage string, flags []cli.Flag, action cli.ActionFunc) *cli.Command {
	return &cli.Command{
		Name:      name,
		Usage:     usage,
		ArgsUsage: argsUsage,
		Flags:     flags,
		Before:    withConfig(flags),
		Action:    action,
		OnUsageError: func(_ *cli.Context, err error, _ bool) error {
			return usageError{err}
		},
	}
}

// openQueue opens the queue with the limits of the flags, creating it when
// it does not exist yet; log receives the queue's own reports (drops,
// expiries, long lock waits at debug level).
// loggedQueue is the logger of --log-level and the queue of --db, the two
// things every command that writes the queue starts with.
func loggedQueue(c *cli.Context, e *env) (*slog.Logger, *queue.Queue, error) {
	log, err := newLogger(e.stderr, c.String("log-level"))
	if err != nil {
		return nil, nil, err
	}
	q, err := openQueue(c, log)
	if err != nil {
		return nil, nil, err
	}
	return log, q, nil
}

func openQueue(c *cli.Context, log *slog.Logger) (*queue.Queue, error) {
	opts, err := queueOptions(c, log)
	if err != nil {
		return nil, err
	}
	return queue.Open(c.String("db"), opts)
}

// queueOptions are the queue options the flags give.
func queueOptions(c *cli.Context, log *slog.Logger) (*queue.Options, error) {
	opts := &queue.Options{
		Logger:      log,
		BusyTimeout: c.Duration("queue-busy-timeout"),
		MaxRecords:  c.Int64("max-records"),
		MaxBytes:    c.Int64("max-bytes"),
	}
	if opts.MaxRecords < 0 {
		return nil, usagef("--max-records %d is negative", opts.MaxRecords)
	}
	if opts.MaxBytes < 0 {
		return nil, usagef("--max-bytes %d is negative", opts.MaxBytes)
	}
	switch p := c.String("queue-policy"); p {
	case "drop-oldest", "":
		opts.Policy = queue.DropOldest
	case "reject-new":
		opts.Policy = queue.RejectNew
	default:
		return nil, usagef("--queue-policy %q: use drop-oldest or reject-new", p)
	}
	if opts.BusyTimeout <= 0 {
		return nil, usagef("--queue-busy-timeout must be positive")
	}
	return opts, nil
}

// windowConfig turns flags into an uplink.Config and validates it.
func windowConfig(c *cli.Context) (uplink.Config, error) {
	cfg := uplink.Defaults()
	cfg.Transport = uplink.Transport(c.String("transport"))
	cfg.EmptyWindow = uplink.EmptyWindowPolicy(c.String("empty-window"))
	if err := modemConfig(c, &cfg); err != nil {
		return cfg, err
	}
	cfg.APN = c.String("apn")
	cfg.APNUser = c.String("apn-user")
	cfg.APNPassword = c.String("apn-password")
	cfg.NetworkMode = modem.NetworkMode{CNMP: c.Int("network-mode"), CMNB: c.Int("lte-category"), Bands: c.String("bands")}
	switch cfg.NetworkMode.CNMP {
	case 0, 2, 13, 38, 51:
	default:
		return cfg, usagef("--network-mode %d: use 2, 13, 38 or 51", cfg.NetworkMode.CNMP)
	}
	switch cfg.NetworkMode.CMNB {
	case 0, 1, 2, 3:
	default:
		return cfg, usagef("--lte-category %d: use 1 (Cat-M), 2 (NB-IoT) or 3 (both)", cfg.NetworkMode.CMNB)
	}
	cfg.RegistrationTimeout = c.Duration("registration-timeout")
	cfg.SendLimit = c.Int("send-limit")
	cfg.NormalSend = c.Bool("normal-send")
	cfg.Broker = c.String("broker")
	cfg.ClientID = c.String("client-id")
	cfg.Username = c.String("username")
	pw, err := password(c)
	if err != nil {
		return cfg, err
	}
	cfg.Password = pw
	v, err := codec.ParseVersion(c.String("mqtt-version"))
	if err != nil {
		return cfg, usagef("--mqtt-version %q: use 3.1, 3.1.1 or 5", c.String("mqtt-version"))
	}
	cfg.MQTTVersion = v
	ka := c.Int("keepalive")
	if ka < 0 || ka > 65535 {
		return cfg, usagef("--keepalive %d is outside 0..65535 seconds", ka)
	}
	cfg.KeepAlive = uint16(ka)
	cfg.InFlight = c.Int("inflight")
	cfg.NoSeq = c.Bool("no-seq")
	cfg.ReplyTimeout = c.Duration("reply-timeout")
	cfg.TLS = uplink.TLSConfig{
		Enabled:    c.Bool("tls"),
		CAFile:     c.String("ca-file"),
		CertFile:   c.String("cert-file"),
		KeyFile:    c.String("key-file"),
		ServerName: c.String("server-name"),
		HybridKEX:  c.Bool("tls-hybrid-kex"),
		NoResume:   c.Bool("tls-no-resume"),
	}
	cfg.StatusTopic = strings.ReplaceAll(c.String("status-topic"), "{client-id}", cfg.ClientID)
	cfg.WillTopic = strings.ReplaceAll(c.String("will-topic"), "{client-id}", cfg.ClientID)
	cfg.MinCSQ = c.Int("min-csq")
	cfg.MinVoltageMV = c.Int("min-voltage-mv")
	cfg.MaxDeferral = c.Duration("max-deferral")
	cfg.WindowTimeout = c.Duration("window-timeout")
	cfg.MaxRecords = c.Int("window-records")
	if cfg.MaxRecords < 0 {
		return cfg, usagef("--window-records %d is negative", cfg.MaxRecords)
	}
	if err := packConfig(c, &cfg); err != nil {
		return cfg, err
	}
	if err := downlinkConfig(c, &cfg); err != nil {
		return cfg, err
	}
	if err := cfg.Validate(); err != nil {
		return cfg, usageError{err}
	}
	return cfg, nil
}

// password comes from --password or --password-file, never both.
func password(c *cli.Context) ([]byte, error) {
	pw, file := c.String("password"), c.String("password-file")
	if pw != "" && file != "" {
		return nil, usagef("--password and --password-file are both set; use one")
	}
	if file == "" {
		if pw == "" {
			return nil, nil
		}
		return []byte(pw), nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, usagef("--password-file: %v", err)
	}
	return []byte(strings.TrimRight(string(b), "\r\n")), nil
}

// schedule parses the schedule flags; nil when no schedule is configured.
func schedule(c *cli.Context) (*uplink.Schedule, error) {
	spec := c.String("schedule")
	if spec == "" {
		return nil, nil
	}
	sp := uplink.Spread{
		ClientID:  c.String("client-id"),
		Jitter:    c.Duration("jitter"),
		JitterSet: c.IsSet("jitter"),
		Random:    c.Bool("random-jitter"),
	}
	if slot := c.String("slot"); slot != "" {
		i, n, ok := parseSlot(slot)
		if !ok {
			return nil, usagef("--slot %q: want I/N, site I of N (0 <= I < N), e.g. 17/250", slot)
		}
		sp.Slot, sp.Slots = i, n
	}
	s, err := uplink.ParseSchedule(spec, sp)
	if err != nil {
		return nil, usageError{err}
	}
	return s, nil
}

func describeDuration(d time.Duration) string {
	if d < time.Second {
		return d.Round(time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}

// parseSlot reads --slot I/N.
func parseSlot(s string) (i, n int, ok bool) {
	a, b, found := strings.Cut(s, "/")
	if !found {
		return 0, 0, false
	}
	i, err1 := strconv.Atoi(strings.TrimSpace(a))
	n, err2 := strconv.Atoi(strings.TrimSpace(b))
	if err1 != nil || err2 != nil || n < 1 || i < 0 || i >= n {
		return 0, 0, false
	}
	return i, n, true
}
