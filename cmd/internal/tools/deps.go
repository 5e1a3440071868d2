package tools

import (
	_ "github.com/eclipse/paho.golang/packets"
	_ "github.com/mochi-mqtt/server/v2"
	_ "github.com/robfig/cron/v3"
	_ "github.com/urfave/cli/v2"
	_ "github.com/urfave/cli/v2/altsrc"
	_ "go.bug.st/serial"
	_ "go.etcd.io/bbolt"
	_ "golang.org/x/sys/unix"
)
