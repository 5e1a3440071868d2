package main

// The layer rules, one per package of the module, each taken from the
// package's doc comment (quoted in why). Paths are relative to the module
// ("codec", "uplink/modem"); a path outside the module ("go.etcd.io/bbolt")
// also stands for everything under it. The standard library is always
// allowed except where a rule names a standard package in deny.
//
// A package of the module that has no rule here fails the check: a new
// package says what it must not import when it is added.

// rule is what one package, built with tags, may depend on (go list -deps,
// non-test).
type rule struct {
	pkg  string
	tags string // comma-separated build tags; "" is the default build
	why  string // the doc comment's sentence the rule enforces

	// only, when not nil, lists every non-standard dependency allowed
	// (besides the package itself): anything else fails.
	only []string
	// deny lists dependencies that must not appear; a standard package here
	// must not be imported directly (fmt alone imports os).
	deny []string
	// testDeny lists packages (exact paths) the package's _test.go files
	// must not import directly (for test-only packages such as the
	// end-to-end suite).
	testDeny []string
	// helper marks a test helper package: no product package may import it.
	helper bool
	// mayUseHelpers lists the helper packages this package may import (the
	// workstation-only demo in the default build of cmd/uploader).
	mayUseHelpers []string
	// optional rules are for packages another branch is adding; the rule
	// applies once the package exists.
	optional bool
}

// uplinkImporters are the only packages allowed to import package uplink,
// the window the command line wires up.
var uplinkImporters = []string{"cmd/uploader"}

var rules = []rule{
	{
		pkg:  "codec",
		why:  "codec: must not depend on the queue, the modem or serial port, files, or any package outside the standard library",
		only: []string{},
		deny: []string{"os", "net", "os/exec"},
	},
	{
		pkg:  "queue",
		why:  "queue: must not import the codec or uplink packages; its only dependencies are the standard library, go.etcd.io/bbolt and golang.org/x/sys/unix",
		only: []string{"go.etcd.io/bbolt", "golang.org/x/sys/unix"},
		deny: []string{"net"},
	},
	{
		pkg:  "uplink/modem",
		why:  "uplink/modem: must not import codec, queue, uplink or cmd (only the shared error vocabulary, uplink/fault); its only third-party dependency is go.bug.st/serial",
		only: []string{"go.bug.st/serial", "golang.org/x/sys/unix", "uplink/fault"},
	},
	{
		pkg:  "uplink/session",
		why:  "uplink/session: speaks MQTT only through package codec and sees the queue only through the Store interface; knows nothing of bbolt, serial ports, AT commands or modems",
		only: []string{"codec", "uplink/fault"},
	},
	{
		pkg:  "uplink/modemsim",
		why:  "uplink/modemsim: must not depend on the uploader's other packages (codec, queue, uplink/modem); uses the standard library and golang.org/x/sys only",
		only: []string{"golang.org/x/sys"},
	},
	{
		pkg:  "uplink",
		why:  "uplink: joins queue, uplink/session, codec and uplink/modem; must not depend on package cmd/uploader (nor on the simulator or test helpers)",
		only: []string{"codec", "queue", "uplink/modem", "uplink/session", "uplink/fault", "uplink/pack", "go.etcd.io/bbolt", "go.bug.st/serial", "github.com/robfig/cron/v3", "golang.org/x/sys"},
	},
	{
		pkg:  "uplink/pack",
		why:  "uplink/pack: must not depend on the queue, the MQTT codec, the session, the modem or any package outside the standard library",
		only: []string{},
		deny: []string{"os", "net", "os/exec"},
	},
	{
		pkg:  "cmd/uploader/bridge",
		why:  "cmd/uploader/bridge: speaks MQTT 5 through github.com/eclipse/paho.golang and must not depend on the queue, package uplink, the session, the modem or the MQTT codec",
		only: []string{"uplink/pack", "github.com/eclipse/paho.golang", "go.etcd.io/bbolt", "golang.org/x/sys"},
	},
	{
		pkg:  "uplink/fault",
		why:  "uplink/fault: imports nothing of this module and must not: package modem, package session and package uplink all import it",
		only: []string{},
	},
	{
		pkg:  "cmd/uploader",
		tags: "board,urfave_cli_no_docs",
		why:  "cmd/uploader (board build): leaves out the workstation tools, so no MQTT broker, client library or simulator on a board",
		deny: []string{"uplink/modemsim", "cmd/uploader/bridge", "github.com/mochi-mqtt/server/v2", "github.com/eclipse/paho.golang", "github.com/cpuguy83/go-md2man/v2", "testing"},
	},
	{
		pkg:           "cmd/uploader",
		why:           "cmd/uploader (workstation build): the demo may embed brokertest's broker and the simulator, nothing else of the test helpers",
		mayUseHelpers: []string{"uplink/brokertest"},
	},
	{
		pkg:  "cmd/benchreport",
		why:  "cmd/benchreport: depends only on the standard library and runs the benchmarks through the go command",
		only: []string{},
	},
	{
		pkg:      "cmd/uploader/e2e",
		why:      "e2e: must not import the uploader's internals (cmd/uploader, uplink, uplink/modem, uplink/session, uplink/modemsim, queue); may use codec and brokertest",
		only:     []string{},
		testDeny: []string{"cmd/uploader", "uplink", "uplink/modem", "uplink/session", "uplink/modemsim", "queue"},
	},
	{
		pkg:    "uplink/brokertest",
		why:    "uplink/brokertest: for tests and the demo; must not be imported by the code that runs on a board's windows",
		deny:   []string{"uplink", "queue", "uplink/modem", "uplink/session"},
		helper: true,
	},
	{
		pkg:      "uplink/testkit",
		why:      "uplink/testkit: test helpers, imported from _test.go files only",
		deny:     []string{"uplink", "uplink/modem", "queue"},
		helper:   true,
		optional: true,
	},
	{
		pkg:      "uplink/modemsim/simtest",
		why:      "uplink/modemsim/simtest: starts the simulator for tests, imported from _test.go files only",
		deny:     []string{"uplink", "uplink/modem", "queue"},
		helper:   true,
		optional: true,
	},
}
