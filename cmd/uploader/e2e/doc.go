// Package e2e is the end-to-end suite of the uploader: it proves "nothing
// is lost" with the real binary, as separate processes, against real
// brokers.
//
// TestMain builds cmd/uploader once into a temporary directory (with -race
// when the suite itself runs under the race detector). The tests then run
// `uploader enqueue` from several processes, `uploader flush` and
// `uploader run` against `uploader simulate` (the SIM7000 simulator on a
// pseudo-terminal, in its own process), delivering to mochi-mqtt
// (uplink/brokertest, in the test process) and to Debian's mosquitto (its
// own process, with a password file). Every reading carries a unique id in
// its payload; each scenario compares what was enqueued with what a
// subscriber received. TESTING.md describes the scenarios.
//
// Everything here lives in _test.go files: the package exports nothing.
// It drives the product only through its command line and the MQTT wire,
// so it must not import the uploader's internals (cmd/uploader, uplink,
// uplink/modem, uplink/session, uplink/modemsim, queue). It may use codec
// to speak MQTT to mosquitto and brokertest to host a broker.
package e2e
