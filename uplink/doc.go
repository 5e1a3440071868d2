// Package uplink runs one low-power radio window: it powers the SIM7000's
// radio on, registers, opens ONE TCP session (through the modem's AT+CIPSTART
// or through the host's own network), runs ONE MQTT session that drains the
// queue, and switches the radio off again, whatever happened.
//
// It is the only package that joins the others: it reads records from
// package queue, speaks MQTT through package uplink/session (which uses
// package codec), and drives the modem through package uplink/modem. It
// owns the window (RunWindow), the one way every process holds the modem
// (OpenModem, WithModem: lock, power, teardown plan), the module's crash
// state (the mid-packet mark), the window schedule (robfig/cron), the
// decision of what comes after a failure (Classify, over the vocabulary of
// package uplink/fault), the window summary stored for `uploader status`,
// and the downlink (inbox.go): the persistent session's subscriptions, the
// inbox adapter (store.go) and the inbox hook run after the radio is off.
//
// It must not depend on package cmd/uploader: the command line is thin wiring
// over this package.
//
// The delivery rule is at-least-once: a record leaves the queue only when the
// broker has provably received it (PUBACK/PUBCOMP for QoS 1/2, a PINGRESP that
// follows it for QoS 0). Every failure leaves the unacknowledged records
// queued for the next window.
//
// # A record's way
//
// One reading, from the sensor script to its deletion:
//
//   - `uploader enqueue` (cmd/uploader/cmd_enqueue.go) checks the topic
//     with codec.ValidateTopicName and hands the record to queue.Enqueue
//     (queue/enqueue.go), which gives it the next sequence number and
//     commits it, encoded by queue/record.go, in one fsync'd bbolt
//     transaction.
//   - The daemon (schedule.go, Daemon) or `uploader flush` calls RunWindow
//     (window.go). The window takes the queue's window lock (lock.go), then
//     holds the modem (hold.go, OpenModem): the modem lock, the mid-packet
//     mark dealt with (midpacket.go), power, the port opened and
//     synchronised (uplink/modem/bringup.go). It switches the radio on,
//     waits for registration, starts the bearer and dials the broker
//     (uplink/modem/bearer.go), which gives a modem.Conn: a net.Conn.
//   - session.Run (uplink/session/session.go) sends CONNECT and reads the
//     record through the Store interface (store.go, over queue.Read in
//     queue/read.go), encodes it with codec.AppendPublish
//     (codec/publish.go), and packs it into a chunk that ends on a packet
//     boundary (uplink/session/write.go).
//   - modem.Conn.Write (uplink/modem/conn.go) sends the chunk with one
//     AT+CIPSEND. The broker's PUBACK comes back through AT+CIPRXGET, is
//     decoded by the session's reader (uplink/session/reader.go, with
//     codec.Decoder) and matched to the record in flight
//     (uplink/session/replies.go, onPuback).
//   - The session calls Store.Ack, which is queue.Ack (queue/read.go): the
//     record is deleted in one fsync'd transaction, in a batch with its
//     neighbours. Only now has it left the queue.
//   - Modem.Close (teardown.go) closes the connection and switches the radio
//     off by the teardown plan; RunWindow stores the Summary.
//
// # Caveats
//
// Nothing may complete a PUBLISH the broker holds part of. A PUBLISH
// larger than one AT+CIPSEND (about 1.4 KB) goes out in several; if the
// process dies between them (SIGKILL, OOM, a board reset) while the module
// keeps its supply, the module may be waiting for the rest of a send, and
// the first bytes it hears — the next process's AT probes — would become
// the tail of that PUBLISH, which the broker would route as a corrupted
// reading. So:
//
//   - chunks end on packet boundaries, so only a PUBLISH larger than a
//     chunk is ever split;
//   - before each later chunk of a split PUBLISH the window writes the
//     mid-packet mark, synced: "the broker may hold part of a packet until
//     T" (midpacket.go, midPacketHold);
//   - every process that talks to the module goes through OpenModem, which
//     finds the mark and either power-cycles the module (a power switch is
//     configured) or sends it nothing until T, when the broker has surely
//     dropped that connection;
//   - a live window whose split write was cut short (modem.ErrSplitWriteCut)
//     tears down by the same rule: no AT+CIPCLOSE, no filler; the power is
//     cut, or the radio stays on until T (TeardownPlan.AwaitBroker).
//
// Over TLS the rule is not needed: a record completed with junk fails its
// MAC and the broker drops the connection.
//
// The modem lock (lock.go) only excludes processes; the kernel drops it
// when its holder dies. The mark is the module's state and outlives every
// process; it lives in a file of its own beside the lock.
package uplink
