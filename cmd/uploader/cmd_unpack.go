//go:build !board

package main

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"unicode/utf8"

	"github.com/urfave/cli/v2"

	"github.com/nbiot-uploader/uploader/uplink/pack"
)

func unpackCommand(e *env) *cli.Command {
	flags := []cli.Flag{
		&cli.StringFlag{Name: "config", Usage: "configuration file (YAML, or TOML when it ends in .toml); keys are the flag names", EnvVars: envName("config")},
	}
	cmd := command("unpack", "decode packs (stdin, or each FILE holding one) to NDJSON, one reading per line", "[FILE...]", flags, func(c *cli.Context) error {
		return runUnpack(c, e)
	})
	cmd.Description = "Each line: client_id, seq, time, topic, qos, retain, and payload (UTF-8) or payload_base64.\n" +
		"A damaged or truncated pack exits 2 naming the defect, and nothing is printed."
	return cmd
}

// unpackedReading is one NDJSON line of `uploader unpack`.
type unpackedReading struct {
	ClientID      string `json:"client_id"`
	Seq           uint64 `json:"seq"`
	Time          string `json:"time"`
	Topic         string `json:"topic"`
	QoS           byte   `json:"qos"`
	Retain        bool   `json:"retain"`
	Payload       string `json:"payload,omitempty"`
	PayloadBase64 string `json:"payload_base64,omitempty"`
}

func newUnpackedReading(clientID string, r pack.Reading) unpackedReading {
	u := unpackedReading{ClientID: clientID, Seq: r.Seq, Time: r.Time.UTC().Format("2006-01-02T15:04:05.000Z07:00"), Topic: r.Topic, QoS: r.QoS, Retain: r.Retain}
	if utf8.Valid(r.Payload) {
		u.Payload = string(r.Payload)
	} else {
		u.PayloadBase64 = base64.StdEncoding.EncodeToString(r.Payload)
	}
	return u
}

// maxPackInput bounds what unpack reads of one input.
const maxPackInput = pack.MaxBody + 1<<20

func runUnpack(c *cli.Context, e *env) error {
	names := c.Args().Slice()
	if len(names) == 0 {
		names = []string{"-"}
	}
	// Every input is decoded before anything is printed: a damaged pack
	// leaves no partial output behind.
	var packs []*pack.Pack
	for _, name := range names {
		b, err := readPackInput(name, e.stdin)
		if err != nil {
			return err
		}
		p, err := pack.Decode(b)
		if err != nil {
			return usagef("%s: %v", displayName(name), err)
		}
		packs = append(packs, p)
	}
	w := bufio.NewWriter(e.stdout)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	for _, p := range packs {
		for _, r := range p.Readings {
			if err := enc.Encode(newUnpackedReading(p.ClientID, r)); err != nil {
				return fmt.Errorf("write: %w", err)
			}
		}
	}
	if err := w.Flush(); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	return nil
}

func displayName(name string) string {
	if name == "-" {
		return "stdin"
	}
	return name
}

func readPackInput(name string, stdin io.Reader) ([]byte, error) {
	r := stdin
	if name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return nil, usagef("unpack: %v", err)
		}
		defer f.Close()
		r = f
	}
	b, err := io.ReadAll(io.LimitReader(r, maxPackInput+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", displayName(name), err)
	}
	if len(b) > maxPackInput {
		return nil, usagef("%s: more than %d bytes, larger than any pack", displayName(name), maxPackInput)
	}
	return b, nil
}
