// Package testkit holds the helpers the uploader's tests share: a
// concurrency-safe output buffer that a test can wait on, a broadcast
// notifier for fakes to signal progress, condition waits with a safety
// deadline, a loopback listener and the -update golden-file flag.
//
// It is for tests only: import it from _test.go files and nowhere else.
// Product packages (codec, queue, uplink and its sub-packages, cmd/...)
// must not import it. It imports no package of this module, so the
// internal tests of any package (package modem, package uplink, package
// modemsim, ...) can use it without an import cycle; the simulator starter
// lives apart, in uplink/modemsim/simtest, for that reason.
//
// Waiting in tests: a test waits for an event (a write to a SyncBuffer, a
// Notifier broadcast, a channel) and uses a generous deadline only as a
// safety net that fails the test with what it saw. It never sleeps for a
// fixed time and then asserts, and never asserts that something took less
// than a tight wall-clock bound: the machines that run the suite are small
// and loaded, and -race slows everything several times.
package testkit
