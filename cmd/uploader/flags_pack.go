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
		strFlag("data-budget", "", "estimated air bytes per calendar month (UTC), e.g. 5MB or 500kB: over its forecast windows pack, over its pace they defer, sending the status record alone once a day (empty: no budget)"),
	}
}

// packConfig fills the pack and budget part of cfg; Validate checks it.
func packConfig(c *cli.Context, cfg *uplink.Config) error {
	cfg.Pack = uplink.PackMode(c.String("pack"))
	cfg.PackTopic = strings.ReplaceAll(c.String("pack-topic"), "{client-id}", cfg.ClientID)
	cfg.PackMaxBytes = c.Int("pack-max-bytes")
	if b := c.String("data-budget"); b != "" {
		n, err := uplink.ParseBytes(b)
		if err != nil {
			return usagef("--data-budget: %v", err)
		}
		if n == 0 {
			return usagef("--data-budget 0: leave it empty for no budget")
		}
		cfg.DataBudget = n
	}
	return nil
}
