package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/urfave/cli/v2"
)

// The configuration file is flat: one key per flag name, one scalar value
// each. YAML ("key: value") or TOML ("key = value", when the file name ends
// in .toml). Only that flat subset is accepted, and anything else is an
// error naming the line.
//
// We parse it ourselves rather than through urfave/cli's altsrc: altsrc
// imports net/http (to load configuration from URLs), which alone adds about
// 2 MiB to the stripped linux/mipsle binary, and a board's flash is small.

// maxConfigBytes bounds the file; a real one is a few hundred bytes.
const maxConfigBytes = 1 << 20

// configEntry is one key of the file and where it stood.
type configEntry struct {
	key, value string
	line       int
}

// errConfigSyntax is wrapped by every parse error.
var errConfigSyntax = errors.New("configuration syntax")

func readConfigFile(path string) ([]configEntry, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := readLimited(f, maxConfigBytes)
	if err != nil {
		return nil, err
	}
	if strings.EqualFold(filepath.Ext(path), ".toml") {
		return parseFlatConfig(data, '=')
	}
	return parseFlatConfig(data, ':')
}

func readLimited(f *os.File, limit int64) ([]byte, error) {
	var buf bytes.Buffer
	n, err := buf.ReadFrom(&limitedReader{f: f, left: limit + 1})
	if err != nil {
		return nil, err
	}
	if n > limit {
		return nil, fmt.Errorf("larger than %d bytes", limit)
	}
	return buf.Bytes(), nil
}

type limitedReader struct {
	f    *os.File
	left int64
}

func (l *limitedReader) Read(p []byte) (int, error) {
	if l.left <= 0 {
		return 0, errors.New("file too large")
	}
	if int64(len(p)) > l.left {
		p = p[:l.left]
	}
	n, err := l.f.Read(p)
	l.left -= int64(n)
	return n, err
}

// parseFlatConfig parses "key<sep>value" lines: sep ':' for YAML, '=' for
// TOML. Comments start with '#'; values may be bare or quoted.
func parseFlatConfig(data []byte, sep byte) ([]configEntry, error) {
	if !utf8.Valid(data) {
		return nil, fmt.Errorf("%w: not UTF-8 text", errConfigSyntax)
	}
	var out []configEntry
	seen := map[string]int{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), maxConfigBytes)
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimRight(sc.Text(), " \t\r")
		if n == 1 {
			line = strings.TrimPrefix(line, "\ufeff")
		}
		trimmed := strings.TrimLeft(line, " \t")
		if trimmed == "" || trimmed[0] == '#' || (sep == ':' && (trimmed == "---" || trimmed == "...")) {
			continue
		}
		bad := func(format string, args ...any) error {
			return fmt.Errorf("%w: line %d: %s", errConfigSyntax, n, fmt.Sprintf(format, args...))
		}
		if trimmed != line {
			return nil, bad("indented line: only flat 'key%c value' lines are supported", sep)
		}
		if sep == '=' && strings.HasPrefix(trimmed, "[") {
			return nil, bad("tables are not supported: keys are flag names at the top level")
		}
		i := strings.IndexByte(line, sep)
		if i < 0 {
			return nil, bad("want 'key%c value'", sep)
		}
		key := strings.TrimSpace(line[:i])
		if sep == ':' && i+1 < len(line) && line[i+1] != ' ' && line[i+1] != '\t' {
			// "host:1883" without a key: YAML needs a space after the colon.
			return nil, bad("want 'key: value' with a space after the colon")
		}
		key = unquoteKey(key)
		if !validKey(key) {
			return nil, bad("bad key %q", key)
		}
		value, err := parseScalar(strings.TrimSpace(line[i+1:]), sep)
		if err != nil {
			return nil, bad("%s: %v", key, err)
		}
		if prev, dup := seen[key]; dup {
			return nil, bad("%s is already set on line %d", key, prev)
		}
		seen[key] = n
		out = append(out, configEntry{key: key, value: value, line: n})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%w: %w", errConfigSyntax, err)
	}
	return out, nil
}

func unquoteKey(k string) string {
	if len(k) >= 2 && (k[0] == '"' && k[len(k)-1] == '"' || k[0] == '\'' && k[len(k)-1] == '\'') {
		return k[1 : len(k)-1]
	}
	return k
}

func validKey(k string) bool {
	if k == "" || len(k) > 64 {
		return false
	}
	for _, r := range k {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}

// parseScalar reads a bare, "double-quoted" or 'single-quoted' value with an
// optional trailing comment.
func parseScalar(s string, sep byte) (string, error) {
	if s == "" {
		if sep == '=' {
			return "", errors.New("no value")
		}
		return "", nil
	}
	switch s[0] {
	case '"':
		end := -1
		for i := 1; i < len(s); i++ {
			if s[i] == '\\' {
				i++
				continue
			}
			if s[i] == '"' {
				end = i
				break
			}
		}
		if end < 0 {
			return "", errors.New("unterminated double-quoted string")
		}
		if err := onlyComment(s[end+1:]); err != nil {
			return "", err
		}
		v, err := strconv.Unquote(s[:end+1])
		if err != nil {
			return "", fmt.Errorf("bad escape in %s", s[:end+1])
		}
		return v, nil
	case '\'':
		end := strings.IndexByte(s[1:], '\'')
		if end < 0 {
			return "", errors.New("unterminated single-quoted string")
		}
		if err := onlyComment(s[end+2:]); err != nil {
			return "", err
		}
		return s[1 : end+1], nil
	case '[', '{', '|', '>', '&', '*', '!':
		return "", fmt.Errorf("only single values are supported, not %q", s[:1])
	}
	if i := strings.Index(s, " #"); i >= 0 {
		s = s[:i]
	} else if i := strings.Index(s, "\t#"); i >= 0 {
		s = s[:i]
	}
	s = strings.TrimSpace(s)
	if sep == '=' && s != "true" && s != "false" {
		// TOML: bare values are numbers or booleans; durations must be quoted.
		if _, err := strconv.ParseFloat(strings.ReplaceAll(s, "_", ""), 64); err != nil {
			return "", fmt.Errorf("%q must be quoted (TOML strings need quotes)", s)
		}
		s = strings.ReplaceAll(s, "_", "")
	}
	return s, nil
}

func onlyComment(rest string) error {
	rest = strings.TrimSpace(rest)
	if rest == "" || rest[0] == '#' {
		return nil
	}
	return fmt.Errorf("unexpected %q after the value", rest)
}

// withConfig returns a Before hook that fills flags from --config. A flag
// already set on the command line or through its UPLOADER_ variable keeps
// that value: flag > environment > file > default. Keys that are flags of
// other commands are ignored (one file serves every command); keys that are
// no flag at all are an error, so a typo does not silently fall back to a
// default.
func withConfig(flags []cli.Flag) cli.BeforeFunc {
	return func(c *cli.Context) error {
		path := c.String("config")
		if path == "" {
			return nil
		}
		entries, err := readConfigFile(path)
		if err != nil {
			return usagef("--config %s: %v", path, err)
		}
		mine := map[string]bool{}
		for _, f := range flags {
			for _, n := range f.Names() {
				mine[n] = true
			}
		}
		for _, e := range entries {
			if !mine[e.key] {
				if !knownFlag(e.key) {
					return usagef("--config %s: line %d: unknown key %q (keys are flag names, e.g. broker, apn, schedule)", path, e.line, e.key)
				}
				continue
			}
			if e.key == "config" {
				return usagef("--config %s: line %d: a configuration file cannot name another", path, e.line)
			}
			if c.IsSet(e.key) {
				continue
			}
			if err := c.Set(e.key, e.value); err != nil {
				return usagef("--config %s: line %d: %s: %v", path, e.line, e.key, err)
			}
		}
		return nil
	}
}

// knownFlag reports whether any command has a flag of that name.
func knownFlag(name string) bool {
	var walk func([]*cli.Command) bool
	walk = func(cmds []*cli.Command) bool {
		for _, c := range cmds {
			for _, f := range c.Flags {
				for _, n := range f.Names() {
					if n == name {
						return true
					}
				}
			}
			if walk(c.Subcommands) {
				return true
			}
		}
		return false
	}
	return walk(newApp(&env{}).Commands)
}
