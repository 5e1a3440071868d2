package e2e

import (
	"testing"
)

// Tests of product bugs found by this suite and not fixed yet. Each skips
// itself with a description; remove the t.Skip once the bug is fixed.

// TestKnownBugGarbledPublishAfterKilledFlush: a flush killed while it
// writes a CIPSEND chunk leaves the module (still powered, TCP connection
// still open) waiting for the rest of a fixed-length send. The next
// window's Sync probes with "AT\r" (swallowed as data), then writes its
// data-mode filler (ESC + 1459 NUL, uplink/modem/bringup.go
// dataModeFiller), which completes the pending chunk: the module sends the
// cut PUBLISH with the probes and NULs as the rest of its payload, and the
// broker routes it, with the record's topic and MQTT 5 "seq". Subscribers
// get a corrupted reading, e.g. {"id":"s1-r1213",...,"unit":"ug/m3AT": the
// last two bytes of the payload replaced by the "AT" of the next Sync
// probe. A consumer that de-duplicates on seq keeps it and drops the good
// copy the next window sends. In the field: the uploader
// SIGKILLed (OOM, systemd stop timeout) or the board rebooting while the
// modem keeps its supply. TestPowerCuts shows it in most runs (logged as
// KNOWN BUG, "garbled").
func TestKnownBugGarbledPublishAfterKilledFlush(t *testing.T) {
	requireE2E(t)
	t.Skip("known bug: completing a killed flush's pending CIPSEND with filler sends a corrupted PUBLISH to the broker")
	runPowerCuts(t, "")
}
