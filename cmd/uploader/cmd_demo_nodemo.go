//go:build nodemo

package main

import (
	"errors"

	"github.com/urfave/cli/v2"
)

// Board binaries are built with -tags nodemo: the demo embeds an MQTT
// broker (mochi-mqtt) that a site never needs and that would push the
// stripped linux/mipsle binary past what an OpenWrt board's flash holds.
func demoCommand(*env) *cli.Command {
	return &cli.Command{
		Name:  "demo",
		Usage: "not in this build (board binaries leave out the embedded broker); run `go run ./cmd/uploader demo` on a workstation",
		Action: func(*cli.Context) error {
			return errors.New("demo is not built into this binary (built with -tags nodemo); run `go run ./cmd/uploader demo` from the source tree")
		},
	}
}
