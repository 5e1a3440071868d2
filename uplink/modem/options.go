package modem

import (
	"log/slog"
	"time"
)

// Options configures a Modem. The zero value is usable.
type Options struct {
	// Logger receives step-level messages (never command arguments).
	// Default: discard.
	Logger *slog.Logger
	// Trace, when set, receives every line in and out of the UART at Debug
	// level with the time it was seen; binary payloads are logged as hex and
	// Secrets are redacted.
	Trace *slog.Logger
	// Secrets are replaced by "***" in the trace wherever they occur.
	Secrets [][]byte
	// SendLimit caps the bytes per AT+CIPSEND; 0 means the module's answer
	// to AT+CIPSEND? (never more than 1460).
	SendLimit int
	// QuickSend selects AT+CIPQSEND=1: each chunk is answered by
	// DATA ACCEPT as soon as the module buffered it, instead of SEND OK
	// after the peer's TCP acknowledgement (one round trip per chunk).
	QuickSend bool
	// PollInterval is how often a waiting Read asks AT+CIPRXGET=4, because
	// modules sometimes forget the "+CIPRXGET: 1" notification.
	// Default 500 ms.
	PollInterval time.Duration
}

// Limits of the module, from the SIM7000 AT manual.
const (
	// maxSendChunk is the largest AT+CIPSEND=<n> the module accepts.
	maxSendChunk = 1460
	// maxReceiveChunk is the largest AT+CIPRXGET=2,<n> request.
	maxReceiveChunk = 1460
	// maxLine bounds one line of module output; longer runs without CR/LF
	// are garbage (a wrong baud rate, line noise) and are discarded.
	maxLine = 4096
	// fallbackSendChunk is used when AT+CIPSEND? gives no usable answer;
	// technocreatives' production driver chunks at this size.
	fallbackSendChunk = 1024
	// eventBacklog bounds the events kept while no command collects them.
	eventBacklog = 1024
	// maxStatChunks bounds Stats.ChunkSizes.
	maxStatChunks = 8192
)

// Per-command answer timeouts: the SIMCom maximum where the manual gives
// one (sim7000-at.md §11), otherwise a margin over what working drivers use.
const (
	syncTry          = 300 * time.Millisecond // one AT probe while autobauding
	syncTotal        = 10 * time.Second       // TinyGSM testAT
	syncFillAfter    = 3 * time.Second        // silence before the data-mode filler
	shortTimeout     = 2 * time.Second        // ATE0, CMEE, CIPMUX, CIPQSEND, CIPRXGET=1, CSQ, CEREG?
	queryTimeout     = 5 * time.Second        // CIPRXGET=2/4, CIPACK, CIPSEND?, CIPSTATUS, info queries
	cpinTimeout      = 5 * time.Second        // manual max
	simBusyRetry     = 10 * time.Second       // keep asking while +CME ERROR: SIM busy
	cfunTimeout      = 10 * time.Second       // manual max
	cpowdTimeout     = 3 * time.Second        // TG 1 s, SC 2 s for NORMAL POWER DOWN
	cipshutTimeout   = 65 * time.Second       // manual max
	csttTimeout      = 60 * time.Second       // TG
	ciicrTimeout     = 85 * time.Second       // manual max
	cifsrTimeout     = 10 * time.Second       // TG
	cipstartTimeout  = 160 * time.Second      // manual max from IP INITIAL
	promptTimeout    = 5 * time.Second        // "> " after AT+CIPSEND=<n>
	acceptTimeout    = 10 * time.Second       // DATA ACCEPT (quick send: buffered, no network)
	sendOKTimeout    = 120 * time.Second      // SEND OK waits for the peer's ACK (TC 120 s)
	cipcloseTimeout  = 15 * time.Second       // TG drains up to 15 s
	alreadyConnGrace = 500 * time.Millisecond // ERROR may be followed by ALREADY CONNECT
	cifsrOKGrace     = 50 * time.Millisecond  // an OK some firmware appends to the CIFSR address
	regPollInterval  = 250 * time.Millisecond // TinyGSM
	writeTimeout     = 10 * time.Second       // a UART write that does not finish: port wedged
	lateGrace        = time.Second            // longest wait for an abandoned command's late final
	suspectQuiet     = 500 * time.Millisecond // silence after a command that may mean the module hung
	stallEvidence    = 2 * time.Second        // silence after a command that means the module hung
	hungProbeTimeout = time.Second            // CIPCLOSE on a module suspected hung
	syncQuiet        = 150 * time.Millisecond // no input for this long: earlier answers are over
	syncQuietMax     = time.Second            // stop waiting for quiet on a chattering line
)

func (o Options) withDefaults() Options {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.PollInterval <= 0 {
		o.PollInterval = 500 * time.Millisecond
	}
	if o.SendLimit < 0 {
		o.SendLimit = 0
	}
	return o
}
