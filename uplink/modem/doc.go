// Package modem drives a SIMCom SIM7000 over its UART with AT commands and
// exposes the module's single TCP socket (the classic "CIP" stack) as a
// net.Conn.
//
// It owns everything between the serial port and a byte stream: autobaud
// synchronisation, binary-safe framing of the module's output, dispatch of
// unsolicited result codes (URCs) that may arrive in the middle of another
// command's answer, per-command timeouts taken from the SIMCom manual,
// network bring-up (SIM, radio, registration, PDP bearer), the TCP socket
// (AT+CIPSTART, AT+CIPSEND in binary fixed-length chunks, AT+CIPRXGET manual
// receive, AT+CIPACK) and the power commands (AT+CFUN, AT+CPOWD).
//
// # Concurrency
//
// One goroutine reads the port and is its only reader; it splits the stream
// into lines, the "> " send prompt and length-prefixed receive payloads.
// Commands are serialised: one command (including a whole CIPSEND chunk:
// command, prompt, data, DATA ACCEPT) owns the UART at a time, so a Conn may
// be read and written from two goroutines.
//
// # Late answers and hung modules
//
// A command abandoned before its final result (the caller's context ended,
// or its timeout passed on a slow module) still gets that result later.
// The next command first waits a short, bounded grace for it and discards
// it, and Sync, which may inherit such answers from an earlier process,
// resynchronises with a distinctive query (AT+CMEE?) before trusting any
// answer. A module that has sent nothing at all since an abandoned command
// counts as hung: socket traffic then fails at once and Conn.CloseContext
// spends one short probe, so a shared teardown budget is left for
// AT+CFUN=0. See late.go and resync.go.
//
// # Dependencies
//
// The package knows nothing of MQTT, of the record queue or of the window
// schedule: it must not import codec, queue, uplink or cmd. Its only
// third-party dependency is go.bug.st/serial, used by OpenSerial alone; every
// other entry point takes an io.ReadWriteCloser so tests run on pipes.
//
// # Secrets
//
// The optional trace logs every line in and out. Strings listed in
// Options.Secrets (the APN password, the MQTT password, key material) are
// replaced by "***" wherever they appear, in AT lines and inside binary
// payloads alike. The ordinary Logger never receives command arguments.
package modem
