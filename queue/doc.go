// Package queue is the uploader's durable on-disk FIFO of readings waiting for an uplink window.
//
// It owns one bbolt file and the files next to it that share its name: the lock files
// "<path>.lock" and "<path>.gate", and the short-lived "<path>.create" and "<path>.compact"
// that are renamed over it. It owns nothing else. Records are opaque to it apart from the few fields it needs for ordering,
// limits and expiry: it knows nothing of MQTT, serial ports, modems or networks, and must not
// import the codec or uplink packages. Its only dependencies are the standard library, go.etcd.io/bbolt
// and golang.org/x/sys/unix (for flock).
//
// # Basics
//
// Sensor scripts call [Queue.Enqueue]; the uplink window calls [Queue.Read] in bounded batches,
// sends what it got and calls [Queue.Ack] with the sequence numbers the broker acknowledged.
// Every record gets a sequence number at enqueue time that is strictly increasing and never
// reused, not even after the queue drains or is compacted, so a consumer can de-duplicate on
// client id + sequence.
//
// # Quarantine
//
// A record the consumer can never deliver (the uplink: the broker refused it) is moved by
// [Queue.Quarantine] into a second bucket of the same file, with an opaque reason and the time,
// in one fsync'd transaction. It keeps its sequence number and every field; it is no longer
// read, counted in Depth and Bytes or bound by the limits, and stays until
// [Queue.RetryQuarantined] puts it back under the same sequence number or
// [Queue.DropQuarantined] deletes it. [Queue.Strike] marks a queued record the consumer
// suspects without proof; Read reports the marks in [Record.Strikes] and they leave with the
// record. Both buckets are created on first use, so older files need no migration.
//
// # Inbox
//
// The inbox holds messages a consumer received for the site (the uplink: what the broker
// delivered from the site's subscriptions), opaque to the queue: topic, payload, a QoS byte, a
// retain flag and the sender's 16-bit packet id. [Queue.PutInbox] stores one in one fsync'd
// transaction under a new inbox id, bounded by a byte limit (a message that does not fit is
// refused, the older ones kept), and recognises redeliveries by packet id and content, keeping a
// QoS 2 packet id as "same message" until [Queue.ReleaseInbox]. [Queue.AckInbox] removes handled
// messages, [Queue.InboxFailed] counts failed handling; [Queue.InboxStats] has the counters. Its
// buckets are created on first use.
//
// # Sharing the file between processes
//
// bbolt takes an exclusive lock on its file for as long as it is open, and the modem can take
// minutes. So a [Queue] never keeps the database open between calls: every method takes the
// queue's lock, opens the file, runs one short transaction, closes the file and releases the lock.
// A caller that meets a held lock polls for it until [Options.BusyTimeout] and then fails with a
// [*BusyError] (errors.Is(err, ErrBusy)). Waiters pass through a second "gate" lock first, so a
// process that drains in a tight loop cannot starve a sensor script waiting for its turn.
//
// # Durability
//
// Enqueue, Ack and PutWindowSummary return only after bbolt committed and fsync'd the transaction.
// The file is created under a temporary name and renamed into place, and [Queue.Compact] writes a
// new file and renames it atomically, so a power cut at any moment leaves either the old or the
// new complete file.
//
// # Caveats
//
// Records returned by Read are copies; they stay valid after the call. The file format is
// endian-specific (bbolt's), so do not copy a queue file between big- and little-endian boards.
// A damaged file is reported as [ErrCorrupt]; the package never repairs it on its own.
// Read needs write access (it deletes expired records); Stats and WindowSummary also work on a
// read-only file system. If the file is deleted while a [Queue] is in use, the next call
// creates a new, empty one and sequence numbers start again at 1 (logged as a warning) — unless
// it was opened with [Options.NoCreate]: then a missing file is [ErrNoQueue] ("no queue at PATH")
// and nothing is created, neither the file, its directory nor the lock files beside it.
// A batch refused with [ErrFull] stores nothing but the count of its records
// ([Stats.Rejected]), committed in the transaction that found the queue full.
// Expired records are only removed by Read, so under RejectNew they still count against the
// limits until the next window.
package queue
