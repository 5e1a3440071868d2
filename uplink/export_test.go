package uplink

import (
	"time"
)

// MarkMidPacket leaves the mark a window dying in the middle of a split
// PUBLISH leaves, with the hold a window would give it. The caller holds
// the modem lock at lockPath.
func MarkMidPacket(lockPath string, keepAlive time.Duration) error {
	m, err := openMidPacketMark(lockPath)
	if err != nil {
		return err
	}
	defer m.close()
	return m.set(midPacketHold(keepAlive))
}
