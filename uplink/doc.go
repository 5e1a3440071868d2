// Package uplink runs one low-power radio window: it powers the SIM7000's
// radio on, registers, opens ONE TCP session (through the modem's AT+CIPSTART
// or through the host's own network), runs ONE MQTT session that drains the
// queue, and switches the radio off again, whatever happened.
//
// It is the only package that joins the others: it reads records from
// package queue, speaks MQTT through package uplink/session (which uses
// package codec), and drives the modem through package uplink/modem. It also
// owns the window schedule (robfig/cron), the modem lock that keeps two
// processes from interleaving AT commands, and the window summary stored for
// `uploader status`.
//
// It must not depend on package cmd/uploader: the command line is thin wiring
// over this package.
//
// The delivery rule is at-least-once: a record leaves the queue only when the
// broker has provably received it (PUBACK/PUBCOMP for QoS 1/2, a PINGRESP that
// follows it for QoS 0). Every failure leaves the unacknowledged records
// queued for the next window.
package uplink
