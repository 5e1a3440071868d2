package modemsim

import (
	"errors"
	"strings"
)

// form is how a command was invoked.
type form int

const (
	formExec form = iota // AT+CSQ, ATI
	formRead             // AT+CFUN?
	formTest             // AT+CFUN=?
	formSet              // AT+CFUN=1, ATE0
)

// command is one command of a (possibly chained) command line.
type command struct {
	name string // upper case, without "+": "CSQ", "CIPSEND", "E", "&W"
	form form
	arg  string // text after '=' (extended) or the digits (basic)
}

var errSyntax = errors.New("command line syntax")

// splitCommands parses the part of a line after "AT": extended commands
// ("+CSQ", "+CIPSTART=...") end at ';' outside quotes, basic commands
// ("E0", "I", "&W") are a letter and digits and may follow each other.
func splitCommands(body string) ([]command, error) {
	var cmds []command
	i := 0
	for i < len(body) {
		c := body[i]
		switch {
		case c == ';' || c == ' ':
			i++
		case strings.IndexByte("+*$^#%", c) >= 0:
			cmd, next, err := parseExtended(body, i+1)
			if err != nil {
				return nil, err
			}
			cmds = append(cmds, cmd)
			i = next
		case isLetter(c) || c == '&':
			cmd, next := parseBasic(body, i)
			cmds = append(cmds, cmd)
			i = next
		default:
			return nil, errSyntax
		}
	}
	return cmds, nil
}

func parseExtended(body string, i int) (command, int, error) {
	j := i
	for j < len(body) && (isLetter(body[j]) || isDigit(body[j]) || body[j] == '_') {
		j++
	}
	if j == i {
		return command{}, 0, errSyntax
	}
	cmd := command{name: strings.ToUpper(body[i:j])}
	switch {
	case j < len(body) && body[j] == '?':
		cmd.form = formRead
		j++
	case strings.HasPrefix(body[j:], "=?"):
		cmd.form = formTest
		j += 2
	case j < len(body) && body[j] == '=':
		cmd.form = formSet
		j++
		start := j
		quoted := false
		for j < len(body) && (quoted || body[j] != ';') {
			if body[j] == '"' {
				quoted = !quoted
			}
			j++
		}
		if quoted {
			return command{}, 0, errSyntax
		}
		cmd.arg = body[start:j]
	}
	if j < len(body) && body[j] != ';' {
		return command{}, 0, errSyntax
	}
	return cmd, j, nil
}

func parseBasic(body string, i int) (command, int) {
	j := i + 1
	if body[i] == '&' && j < len(body) && isLetter(body[j]) {
		j++
	}
	cmd := command{name: strings.ToUpper(body[i:j])}
	start := j
	for j < len(body) && isDigit(body[j]) {
		j++
	}
	if j > start {
		cmd.form, cmd.arg = formSet, body[start:j]
	} else if j < len(body) && body[j] == '?' {
		cmd.form = formRead
		j++
	}
	return cmd, j
}

// splitArgs splits a parameter list at commas outside quotes and removes
// the quotes and surrounding blanks of each value.
func splitArgs(s string) []string {
	var args []string
	var cur strings.Builder
	quoted := false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"':
			quoted = !quoted
		case c == ',' && !quoted:
			args = append(args, strings.TrimSpace(cur.String()))
			cur.Reset()
		default:
			cur.WriteByte(c)
		}
	}
	return append(args, strings.TrimSpace(cur.String()))
}

// findAT returns the text after the first "AT" (any case) of a line.
func findAT(line string) (string, bool) {
	for i := 0; i+1 < len(line); i++ {
		if (line[i] == 'A' || line[i] == 'a') && (line[i+1] == 'T' || line[i+1] == 't') {
			return line[i+2:], true
		}
	}
	return "", false
}

func isLetter(c byte) bool { return c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' }
func isDigit(c byte) bool  { return c >= '0' && c <= '9' }

// hexValue decodes one hex digit.
func hexValue(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}
