// Command boardhelp writes the workspace that takes text/template out of the
// board binaries. urfave/cli renders its help screens with text/template,
// and a template that calls methods (reflect's MethodByName) makes the
// linker keep every exported method of every type in the binary: about
// 1.5 MiB of the stripped linux/mipsle binary, a sixth of it, for three help
// screens. The tool copies the urfave/cli module that go.mod selects into
// DIR/cli, takes printHelpCustom out of its help.go, adds render.go.in,
// which renders the same three default templates in plain Go, and writes
// DIR/go.work: this module, with urfave/cli replaced by that copy. (A go
// build -overlay cannot do it: the go command refuses overlays of files in
// the module cache.)
//
//	go run ./.ci/boardhelp -dir DIR    # writes DIR/go.work and prints its path
//	go run ./.ci/boardhelp -check      # proves both builds print the same help
//
// The board build then uses it: GOWORK=DIR/go.work go build -tags
// board,urfave_cli_no_docs ... ./cmd/uploader (.ci/run does). Since the copy
// is made from the version go.mod selects, a dependency update needs
// nothing here unless printHelpCustom's signature changes, which the build
// then reports.
//
// -check builds cmd/uploader for this machine with -tags board twice, with
// and without the workspace, prints every help screen of both (the app,
// every command and subcommand, through --help and through the help
// command) and fails on the first difference, or if text/template's method
// calls are still linked into the patched build.
//
// Package main must not be imported; it depends only on the standard
// library.
package main

import (
	"bytes"
	"debug/elf"
	_ "embed"
	"errors"
	"flag"
	"fmt"
	"go/ast"
	"go/format"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

//go:embed render.go.in
var renderSource []byte

const cliModule = "github.com/urfave/cli/v2"

func main() {
	dir := flag.String("dir", "", "where to write the workspace (default: a new temporary directory)")
	check := flag.Bool("check", false, "build with and without the workspace and compare every help screen")
	flag.Parse()
	if err := run(*dir, *check); err != nil {
		fmt.Fprintln(os.Stderr, "boardhelp:", err)
		os.Exit(1)
	}
}

func run(dir string, check bool) error {
	if dir == "" {
		d, err := os.MkdirTemp("", "uploader-boardhelp-")
		if err != nil {
			return err
		}
		dir = d
		if check {
			defer os.RemoveAll(d)
		}
	}
	overlay, err := writeOverlay(dir)
	if err != nil {
		return err
	}
	if !check {
		fmt.Println(overlay)
		return nil
	}
	return compare(dir, overlay)
}

// writeOverlay writes the patched copy of urfave/cli into dir/cli and the
// workspace that uses it, and returns the workspace file's path.
func writeOverlay(dir string) (string, error) {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", cliModule).Output()
	if err != nil {
		return "", fmt.Errorf("go list -m %s: %w", cliModule, err)
	}
	cliDir := strings.TrimSpace(string(out))
	if cliDir == "" {
		return "", fmt.Errorf("%s is not in the module cache: run go mod download", cliModule)
	}
	out, err = exec.Command("go", "list", "-m", "-f", "{{.Dir}} {{.GoVersion}}").Output()
	if err != nil {
		return "", fmt.Errorf("go list -m: %w", err)
	}
	modDir, goVersion, _ := strings.Cut(strings.TrimSpace(string(out)), " ")
	dir, err = filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	copyDir := filepath.Join(dir, "cli")
	if err := os.RemoveAll(copyDir); err != nil {
		return "", err
	}
	if err := os.CopyFS(copyDir, os.DirFS(cliDir)); err != nil {
		return "", fmt.Errorf("copy %s: %w", cliModule, err)
	}
	help, err := withoutPrintHelpCustom(filepath.Join(cliDir, "help.go"))
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(copyDir, "help.go"), help, 0o644); err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(copyDir, "board_help.go"), renderSource, 0o644); err != nil {
		return "", err
	}
	work := filepath.Join(dir, "go.work")
	text := fmt.Sprintf("go %s\n\nuse %s\n\nreplace %s => %s\n", goVersion, strconv.Quote(modDir), cliModule, strconv.Quote(copyDir))
	return work, os.WriteFile(work, []byte(text), 0o644)
}

// withoutPrintHelpCustom is help.go without the function printHelpCustom
// and without the imports only it used.
func withoutPrintHelpCustom(path string) ([]byte, error) {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, path, nil, parser.ParseComments)
	if err != nil {
		return nil, err
	}
	var cut *ast.FuncDecl
	decls := f.Decls[:0]
	for _, d := range f.Decls {
		if fd, ok := d.(*ast.FuncDecl); ok && fd.Recv == nil && fd.Name.Name == "printHelpCustom" {
			cut = fd
			continue
		}
		decls = append(decls, d)
	}
	if cut == nil {
		return nil, fmt.Errorf("%s: no func printHelpCustom (urfave/cli changed: update .ci/boardhelp)", path)
	}
	f.Decls = decls
	start := cut.Pos()
	if cut.Doc != nil {
		start = cut.Doc.Pos()
	}
	comments := f.Comments[:0]
	for _, c := range f.Comments {
		if c.Pos() < start || c.End() > cut.End() {
			comments = append(comments, c)
		}
	}
	f.Comments = comments
	// Drop the imports nothing else uses.
	used := map[string]bool{}
	ast.Inspect(f, func(n ast.Node) bool {
		if sel, ok := n.(*ast.SelectorExpr); ok {
			if id, ok := sel.X.(*ast.Ident); ok {
				used[id.Name] = true
			}
		}
		return true
	})
	for _, d := range f.Decls {
		gd, ok := d.(*ast.GenDecl)
		if !ok || gd.Tok != token.IMPORT {
			continue
		}
		specs := gd.Specs[:0]
		for _, s := range gd.Specs {
			is := s.(*ast.ImportSpec)
			p, _ := strconv.Unquote(is.Path.Value)
			name := p[strings.LastIndex(p, "/")+1:]
			if is.Name != nil {
				name = is.Name.Name
			}
			if used[name] || name == "_" {
				specs = append(specs, s)
			}
		}
		gd.Specs = specs
	}
	var buf bytes.Buffer
	if err := format.Node(&buf, fset, f); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// compare builds both binaries and compares every help screen.
func compare(dir, overlay string) error {
	plain := filepath.Join(dir, "uploader-plain")
	patched := filepath.Join(dir, "uploader-overlay")
	build := []string{"build", "-tags", "board,urfave_cli_no_docs", "-trimpath"}
	if out, err := exec.Command("go", append(build, "-o", plain, "./cmd/uploader")...).CombinedOutput(); err != nil {
		return fmt.Errorf("build: %w: %s", err, out)
	}
	cmd := exec.Command("go", append(build, "-o", patched, "./cmd/uploader")...)
	cmd.Env = append(os.Environ(), "GOWORK="+overlay)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("build with the workspace: %w: %s", err, out)
	}
	if err := noTemplateMethods(patched); err != nil {
		return err
	}
	screens := 0
	queue := [][]string{{}}
	for len(queue) > 0 {
		path := queue[0]
		queue = queue[1:]
		variants := [][]string{append(append([]string{}, path...), "--help")}
		if len(path) > 0 {
			help := append(append([]string{}, path[:len(path)-1]...), "help", path[len(path)-1])
			variants = append(variants, help)
		} else {
			variants = append(variants, []string{"help"}, []string{})
		}
		for _, args := range variants {
			want := runHelp(plain, args)
			got := runHelp(patched, args)
			if got != want {
				return fmt.Errorf("uploader %s: the help differs\n--- template (urfave/cli)\n%s\n--- plain Go (boardhelp)\n%s", strings.Join(args, " "), want, got)
			}
			screens++
		}
		for _, c := range commands(runHelp(plain, append(append([]string{}, path...), "--help"))) {
			if c != "help" {
				queue = append(queue, append(append([]string{}, path...), c))
			}
		}
	}
	fmt.Printf("boardhelp: %d help screens identical with and without the workspace; text/template's method calls are not linked\n", screens)
	return nil
}

// runHelp runs the binary and returns what it printed and how it exited.
func runHelp(bin string, args []string) string {
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "HOME="+os.TempDir())
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return out.String() + "[exit 0]"
	case errors.As(err, &exit):
		return out.String() + fmt.Sprintf("[exit %d]", exit.ExitCode())
	default:
		return out.String() + "[" + err.Error() + "]"
	}
}

// commands lists the first name of every command of a help screen.
func commands(help string) []string {
	_, rest, ok := strings.Cut(help, "\nCOMMANDS:\n")
	if !ok {
		return nil
	}
	var names []string
	for _, line := range strings.Split(rest, "\n") {
		if !strings.HasPrefix(line, "   ") {
			break
		}
		name, _, _ := strings.Cut(strings.TrimSpace(line), " ")
		names = append(names, strings.TrimSuffix(name, ","))
	}
	return names
}

// noTemplateMethods fails when text/template's field evaluation, which
// calls reflect's MethodByName, is linked into bin.
func noTemplateMethods(bin string) error {
	f, err := elf.Open(bin)
	if err != nil {
		return err
	}
	defer f.Close()
	syms, err := f.Symbols()
	if err != nil {
		return fmt.Errorf("%s: %w", bin, err)
	}
	for _, s := range syms {
		if s.Name == "text/template.(*state).evalField" {
			return errors.New("the overlay build board build still links text/template.(*state).evalField")
		}
	}
	return nil
}
