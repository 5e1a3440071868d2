package uplink

import (
	"github.com/nbiot-uploader/uploader/queue"
	"github.com/nbiot-uploader/uploader/uplink/session"
)

// QueueStore is the window's Store over q, with its Inbox.
type QueueStore interface {
	session.Store
	session.Inbox
}

// NewQueueStore returns the store a window hands its session.
func NewQueueStore(q *queue.Queue, inboxMax int64) QueueStore {
	return queueStore{q: q, inboxMax: inboxMax}
}
