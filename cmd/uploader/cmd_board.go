//go:build board

package main

import (
	"errors"

	"github.com/urfave/cli/v2"
)

// Board binaries are built with -tags board. They leave out the
// workstation tools a site never runs — the demo, which embeds an MQTT
// broker (mochi-mqtt), the SIM7000 simulator, and the consumer side of
// packed windows (bridge, unpack) — to keep the stripped linux/mipsle
// binary within what an OpenWrt board's flash holds.

func demoCommand(*env) *cli.Command {
	return workstationOnly("demo", "the whole job on this machine with an embedded broker and a simulated SIM7000")
}

func simulateCommand(*env) *cli.Command {
	return workstationOnly("simulate", "run a simulated SIM7000 on a pseudo-terminal")
}

func bridgeCommand(*env) *cli.Command {
	return workstationOnly("bridge", "server side: republish the readings of packs on their own topics")
}

func unpackCommand(*env) *cli.Command {
	return workstationOnly("unpack", "decode packs (stdin, or each FILE holding one) to NDJSON, one reading per line")
}

func workstationOnly(name, what string) *cli.Command {
	return &cli.Command{
		Name:  name,
		Usage: what + " (not in board builds)",
		Action: func(*cli.Context) error {
			return errors.New(name + " is not built into this board binary (built with -tags board); run it from the source tree: go run ./cmd/uploader " + name)
		},
	}
}
