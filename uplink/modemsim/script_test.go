package modemsim

import (
	"bufio"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestDialogScripts replays the golden dialogs in testdata/dialog: each
// file is a script of exact bytes the host sends and the module must
// answer, checked against the formats of sim7000-at.md.
//
// Script lines:
//
//	# comment
//	variants <spec>      ParseVariants spec for the module (before any traffic)
//	faults <spec>        ParseFaults spec for the module (before any traffic)
//	> "quoted"           host writes these bytes ($PORT is the broker's port)
//	< "quoted"           module must write exactly these bytes next
//	quiet                module has answered everything sent with what the
//	                     script expected, and nothing more
//	accept               broker accepts the module's connection
//	b> "quoted"          broker writes these bytes
//	b< "quoted"          broker must read exactly these bytes
//	bclose               broker closes the connection
//	beof                 broker must see the module close the connection
func TestDialogScripts(t *testing.T) {
	files, err := filepath.Glob("testdata/dialog/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no dialog scripts: %v", err)
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".txt"), func(t *testing.T) {
			runScript(t, file)
		})
	}
}

func runScript(t *testing.T, file string) {
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cfg := Fast()
	var h *host
	var sim *Sim
	b := newBroker(t)
	scanner := bufio.NewScanner(f)
	lineNo := 0
	for scanner.Scan() {
		lineNo++
		line := strings.TrimSpace(scanner.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		op, arg, _ := strings.Cut(line, " ")
		arg = strings.TrimSpace(arg)
		quoted := func() string {
			t.Helper()
			s, err := strconv.Unquote(arg)
			if err != nil {
				t.Fatalf("%s:%d: bad quoted string %s: %v", file, lineNo, arg, err)
			}
			return strings.ReplaceAll(s, "$PORT", b.port())
		}
		if h == nil && op != "variants" && op != "faults" {
			sim, h = startPipe(t, cfg)
		}
		switch op {
		case "variants":
			if cfg.Variants, err = ParseVariants(arg); err != nil {
				t.Fatalf("%s:%d: %v", file, lineNo, err)
			}
		case "faults":
			if cfg.Faults, err = ParseFaults(arg); err != nil {
				t.Fatalf("%s:%d: %v", file, lineNo, err)
			}
		case ">":
			h.send(quoted())
		case "<":
			h.expect(quoted())
		case "quiet":
			if arg != "" {
				t.Fatalf("%s:%d: quiet takes no argument: it waits for the module to take in the host's bytes, not for a time", file, lineNo)
			}
			h.quiet()
		case "accept":
			b.accept()
		case "b>":
			b.send(quoted())
		case "b<":
			b.expect(quoted())
		case "bclose":
			_ = b.conn.Close()
		case "beof":
			b.expectEOF()
		default:
			t.Fatalf("%s:%d: unknown op %q", file, lineNo, op)
		}
	}
	if err := scanner.Err(); err != nil {
		t.Fatal(err)
	}
	if sim != nil {
		h.quiet()
	}
}
