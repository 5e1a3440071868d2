package main

import (
	"strconv"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/nbiot-uploader/uploader/uplink"
)

// defaultPackTopic is where a site's packs go.
const defaultPackTopic = "uploader/{client-id}/pack"

// packFlags configure packed windows (README, "Packed windows").
func packFlags() []cli.Flag {
	return []cli.Flag{
		strFlag("pack", "none", "none (one PUBLISH per reading) or deflate (many readings per PUBLISH, compressed; see `uploader unpack` and `uploader bridge`)"),
		strFlag("pack-topic", defaultPackTopic, "topic of the packs ({client-id} is replaced)"),
		intFlag("pack-max-bytes", uplink.DefaultPackMaxBytes, "largest pack after compression, "+strconv.Itoa(uplink.MinPackMaxBytes)+".."+strconv.Itoa(uplink.MaxPackMaxBytes)),
	}
}

// packConfig fills the pack part of cfg; Validate checks it.
func packConfig(c *cli.Context, cfg *uplink.Config) {
	cfg.Pack = uplink.PackMode(c.String("pack"))
	cfg.PackTopic = strings.ReplaceAll(c.String("pack-topic"), "{client-id}", cfg.ClientID)
	cfg.PackMaxBytes = c.Int("pack-max-bytes")
}
