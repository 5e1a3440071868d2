package uplink

import "time"

// MarkMidPacket lets tests leave the mark a window dying in the middle of a
// split PUBLISH leaves, with the hold a window would give it.
func MarkMidPacket(l *ModemLock, keepAlive time.Duration) error {
	return l.markMidPacket(midPacketHold(keepAlive))
}
