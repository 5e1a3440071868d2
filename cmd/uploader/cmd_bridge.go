//go:build !board

package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/nbiot-uploader/uploader/cmd/uploader/bridge"
	"github.com/nbiot-uploader/uploader/uplink"
)

func bridgeCommand(e *env) *cli.Command {
	flags := []cli.Flag{
		&cli.StringFlag{Name: "config", Usage: "configuration file (YAML, or TOML when it ends in .toml); keys are the flag names", EnvVars: envName("config")},
		strFlag("broker", "", "MQTT broker as host:port (MQTT 5: the packs come from it and the readings go back to it)"),
		strFlag("subscribe", strings.ReplaceAll(defaultPackTopic, "{client-id}", "+"), "topic filter of the packs (QoS 1, persistent session); several separated by commas"),
		strFlag("state", "", "de-duplication state file (bbolt; created when missing; at most "+fmt.Sprint(bridge.DefaultMaxSpans)+" spans of seqs, 16 KiB, per site)"),
		strFlag("refused-file", "", "file of the readings the broker refuses for good (PUBACK reason other than 0x97), one JSON object per line, to send again once fixed; at most "+fmt.Sprint(bridge.DefaultRefusedMaxBytes>>20)+" MiB (default: the --state path + .refused.ndjson)"),
		strFlag("client-id", bridge.DefaultClientID, "MQTT client id of the bridge (its session keeps the packs queued while it is down)"),
		strFlag("username", "", "MQTT user name"),
		strFlag("password", "", "MQTT password (prefer --password-file; never logged)"),
		strFlag("password-file", "", "file holding the MQTT password (trailing newline ignored)"),
		intFlag("keepalive", bridge.DefaultKeepAlive, "MQTT keepalive in seconds"),
		durFlag("reply-timeout", bridge.DefaultReplyTimeout, "longest wait for any broker reply (CONNACK, SUBACK, each PUBACK)"),
		durFlag("session-expiry", bridge.DefaultSessionExpiry, "how long the broker keeps the bridge's session, and the packs for it, while the bridge is down"),
		intFlag("chunk", bridge.DefaultChunk, "readings republished at once; the state records them after each chunk, so a kill repeats at most one chunk"),
		boolFlag("tls", "use TLS to the broker"),
		strFlag("ca-file", "", "PEM file of CA certificates to trust (default: the system's)"),
		strFlag("cert-file", "", "PEM client certificate for mutual TLS"),
		strFlag("key-file", "", "PEM private key for --cert-file (never logged)"),
		strFlag("server-name", "", "TLS server name when it differs from the broker host"),
		boolFlag("tls-hybrid-kex", "offer the hybrid post-quantum key exchange X25519MLKEM768 (default: X25519, then P-256)"),
		strFlag("log-level", "info", "log level (debug logs every reading republished)"),
	}
	cmd := command("bridge", "server side: republish the readings of packs on their own topics, once each", "", flags, func(c *cli.Context) error {
		return runBridge(c, e)
	})
	cmd.Description = "Subscribes to --subscribe with a persistent session at QoS 1, republishes every reading of each pack on its\n" +
		"original topic (QoS 1, or 2 when the reading has it; MQTT 5 user properties seq and client_id), skips readings whose\n" +
		"client id and seq --state has seen, and acknowledges a pack only when all its readings are acknowledged by the broker.\n" +
		"A damaged pack is logged, rejected whole and acknowledged. A reading the broker refuses for good goes to --refused-file\n" +
		"and its pack goes on; one refused for now (Quota exceeded) keeps its pack for a later try.\n" +
		"Runs until SIGINT or SIGTERM; then prints its counts."
	return cmd
}

func runBridge(c *cli.Context, e *env) error {
	log, err := newLogger(e.stderr, c.String("log-level"))
	if err != nil {
		return err
	}
	if c.NArg() > 0 {
		return usagef("bridge takes no arguments, got %q", c.Args().First())
	}
	broker := c.String("broker")
	if broker == "" {
		return usagef("--broker is required (host:port)")
	}
	if c.String("state") == "" {
		return usagef("--state is required: the file that remembers which readings went out")
	}
	var filters []string
	for _, f := range strings.Split(c.String("subscribe"), ",") {
		if f = strings.TrimSpace(f); f != "" {
			filters = append(filters, f)
		}
	}
	if len(filters) == 0 {
		return usagef("--subscribe is empty")
	}
	ka := c.Int("keepalive")
	if ka < 0 || ka > 65535 {
		return usagef("--keepalive %d is outside 0..65535 seconds", ka)
	}
	if c.Int("chunk") < 1 {
		return usagef("--chunk %d is below 1", c.Int("chunk"))
	}
	if c.Duration("reply-timeout") <= 0 || c.Duration("session-expiry") < time.Second {
		return usagef("--reply-timeout and --session-expiry must be positive (--session-expiry at least 1s)")
	}
	pw, err := password(c)
	if err != nil {
		return err
	}
	tlsCfg, err := uplink.TLSConfig{Enabled: c.Bool("tls"), CAFile: c.String("ca-file"), CertFile: c.String("cert-file"),
		KeyFile: c.String("key-file"), ServerName: c.String("server-name"), HybridKEX: c.Bool("tls-hybrid-kex")}.ClientTLS(broker)
	if err != nil {
		return usageError{err}
	}
	cfg := bridge.Config{
		Broker: broker, TLS: tlsCfg, ClientID: c.String("client-id"), Username: c.String("username"), Password: pw,
		Filters: filters, KeepAlive: uint16(ka), ReplyTimeout: c.Duration("reply-timeout"),
		SessionExpiry: c.Duration("session-expiry"), Chunk: c.Int("chunk"), Log: log,
	}
	if _, err := bridge.New(cfg, nil); err != nil {
		return usageError{err}
	}
	st, err := bridge.OpenState(c.String("state"), 0)
	if err != nil {
		return err
	}
	defer st.Close()
	refusedPath := c.String("refused-file")
	if refusedPath == "" {
		refusedPath = c.String("state") + ".refused.ndjson"
	}
	if cfg.Refused, err = bridge.OpenRefusedLog(refusedPath, 0); err != nil {
		return err
	}
	b, err := bridge.New(cfg, st)
	if err != nil {
		return usageError{err}
	}
	err = b.Run(c.Context)
	s := b.Stats()
	log.Info("bridge: stopped", "packs", s.Packs, "rejected", s.Rejected, "republished", s.Republished,
		"duplicates", s.Duplicates, "forgotten", s.Forgotten, "refused", s.Refused, "connects", s.Connects)
	fmt.Fprintf(e.stdout, "bridge: %s\n", &s)
	return err
}
