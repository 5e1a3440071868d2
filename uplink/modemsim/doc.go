// Package modemsim simulates a SIMCom SIM7000 NB-IoT/Cat-M module driven
// through its classic "CIP" TCP stack, so the uploader's serial code, its AT
// dialog and a real TCP connection to a real broker run on every test,
// without hardware. A site operator can use it (as `uploader simulate`) to
// try a configuration on a laptop.
//
// Start serves the module on a Linux pseudo-terminal: the host opens Path
// with go.bug.st/serial exactly as it would open /dev/ttyUSB2. Serve runs
// the same module over any byte stream (one end of net.Pipe) for in-process
// tests. AT+CIPSTART dials a real TCP connection; what the host sends with
// AT+CIPSEND reaches the broker and what the broker answers comes back
// through AT+CIPRXGET (or is pushed, in push mode).
//
// The package owns the module's side of the dialog: the answers, states and
// unsolicited result codes of sim7000-at.md, a timing model, accounting and
// fault injection. It must not depend on the uploader's other packages
// (codec, queue, uplink/modem): it knows nothing of MQTT and forwards bytes
// opaquely. It uses the standard library and golang.org/x/sys only.
//
// # Dialog
//
// Echo is on at boot (the line and its CR are echoed, so "AT+CSQ\r" yields
// "AT+CSQ\r\r\n+CSQ: 20,99\r\n\r\nOK\r\n") until ATE0. Lines end with CR; a
// following LF is ignored; "at" works; commands chain with ';'
// ("AT+CIFSR;E0"). Unknown commands answer ERROR. The data prompt is
// "\r\n> " with no line end. AT+CIFSR answers the bare address with no OK,
// AT+CIPSTATUS answers OK before its STATE line, AT+CIPSTART answers OK then
// CONNECT OK or CONNECT FAIL later; AT+CIPSEND=<n> takes exactly n raw bytes,
// AT+CIPSEND takes bytes up to Ctrl-Z (ESC cancels), and with
// AT+CIPSENDHEX=1 it takes hex pairs, spaces allowed, where the decoded byte
// 0x1A ends the input (the original Python method relies on it). Variants
// selects the forms that differ between sources. Only single-connection
// mode (AT+CIPMUX=0) and TCP are simulated; sleep (AT+CSCLK) and PSM are
// stored but not acted on, because a pseudo-terminal has no DTR line.
// Powered off, booting or hung, the module says nothing; with
// Config.Autobaud it also ignores everything up to the first "AT" after a
// boot, as a module at AT+IPR=0 does.
//
// # Timing model
//
// Every delay comes from Config: the UART carries 10 bits per byte at Baud in
// each direction; each command line costs Turnaround; registration completes
// AttachDelay after the radio goes on (CFUN=1); AT+CIICR takes PDPDelay;
// CONNECT OK comes RoundTrip+ConnectExtra after AT+CIPSTART. The air uplink
// is a resource of its own, running in parallel with the UART: a payload of
// n bytes handed over at t is on the air until
// max(t, busy until) + (n+40)/UplinkRate. SEND OK (normal send mode) and
// the acknowledgement seen by AT+CIPACK come one RoundTrip after that;
// DATA ACCEPT (quick send) comes at once. Data from the broker is stamped
// max(now, end of the last uplink transfer the broker has + RoundTrip) plus
// its downlink time (small writes that arrive while an earlier segment is
// still on its way join it, up to 1460 bytes), and a remote close follows
// the data before it. In real time the broker gets each transfer when it
// ends, so an answer is not held back by the chunks queued behind its
// cause; on the virtual clock it gets everything at once, and answers count
// from the latest transfer.
//
// In real-time mode these delays are slept. With Config.VirtualClock they
// advance a virtual clock instead and nothing sleeps (except the
// SlowAnswers fault, which exists to trip the host's own timeouts). The
// host is then modelled as infinitely fast: its bytes arrive when the UART
// has carried them. Events the host waits for (CONNECT OK, SEND OK in normal
// mode, the end of a boot) happen as soon as the module is idle, with the
// clock moved to their instant. Events the host does not wait for (data
// from the broker, a remote close, registration URCs) happen when the clock
// reaches them through other activity, or once the host has been silent for
// Config.VirtualIdle of real time, which means it is waiting for them. A
// registration query made before the modelled registration instant moves
// the clock to that instant, so the radio-on time does not depend on how
// often the host polls.
//
// # Accounting
//
// Accounting counts radio-on time (CFUN=1 while powered, ended by CFUN=0,
// power-down or Close) and its attach part, bytes on the UART each way,
// bytes on the air (payload, 40 bytes per segment, handshake, teardown and
// ACK segments), AT command lines, CIPSEND calls, the largest chunk, TCP
// connections, and the full byte stream forwarded to the broker, so a test
// can decode it and check what the host really sent.
//
// # Caveats
//
// The module keeps one slave descriptor of the pseudo-terminal open, so
// what it writes while no host has the device open waits in the terminal
// buffer and is read by the next host that opens it: drivers should discard
// stale input when they open the port, as they must on hardware. Output
// the host does not read within 2 s is dropped, as a UART would lose it, so
// a forgotten port cannot wedge the module. PowerOn is
// a switch, not a PWRKEY toggle: it does nothing to a module that is on.
package modemsim
