// Command size measures the board binaries: it builds cmd/uploader for each
// board target exactly as .ci/run does (stripped: that size is what the
// board's flash holds, with the help screens of .ci/boardhelp unless
// -gowork off), builds the same binary once more unstripped, reads
// the symbol table of the unstripped one (what `go tool nm -size` lists) and
// adds each symbol's size to its package and module. Symbols in sections
// that take no room in the file (.bss, .noptrbss) are left out.
//
//	go run ./.ci/size                        # mipsle: table by module and top packages
//	go run ./.ci/size -targets all           # the four board targets' stripped sizes too
//	go run ./.ci/size -update BENCHMARKS.md  # rewrite BENCHMARKS.md's size section
//
// The size section lies between the lines sectionBegin and sectionEnd;
// cmd/benchreport keeps it when it regenerates the rest of the report.
//
// Package main must not be imported; it depends only on the standard
// library and builds through the go command.
package main

import (
	"bytes"
	"cmp"
	"debug/elf"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
)

// The markers around the size section of BENCHMARKS.md.
const (
	sectionBegin = "<!-- size: begin (go run ./.ci/size -targets all -update BENCHMARKS.md) -->"
	sectionEnd   = "<!-- size: end -->"
)

// target is one board build.
type target struct {
	name string
	env  []string
}

var targets = []target{
	{"linux-mipsle-softfloat", []string{"GOOS=linux", "GOARCH=mipsle", "GOMIPS=softfloat"}},
	{"linux-armv6", []string{"GOOS=linux", "GOARCH=arm", "GOARM=6"}},
	{"linux-armv7", []string{"GOOS=linux", "GOARCH=arm", "GOARM=7"}},
	{"linux-arm64", []string{"GOOS=linux", "GOARCH=arm64"}},
}

// workEnv selects the workspace of .ci/boardhelp for every build and list.
var workEnv []string

// buildArgs are .ci/run's board build flags, before -ldflags.
var buildArgs = []string{"build", "-tags", "board,urfave_cli_no_docs", "-trimpath"}

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "size:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("size", flag.ContinueOnError)
	which := fs.String("targets", "mipsle", `"mipsle" or "all": the targets whose stripped size is listed (packages are always measured on mipsle)`)
	top := fs.Int("top", 25, "how many packages to list")
	update := fs.String("update", "", "rewrite the size section of this file (BENCHMARKS.md) instead of printing")
	gcflags := fs.String("gcflags", "", "extra -gcflags for every build (e.g. all=-l to turn inlining off)")
	gowork := fs.String("gowork", "", "the workspace of go run ./.ci/boardhelp, as .ci/run builds; \"off\" for the plain module")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	var list []target
	switch *which {
	case "mipsle":
		list = targets[:1]
	case "all":
		list = targets
	default:
		return fmt.Errorf("-targets %q: want mipsle or all", *which)
	}
	dir, err := os.MkdirTemp("", "uploader-size-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if *gowork == "" {
		out, err := exec.Command("go", "run", "./.ci/boardhelp", "-dir", filepath.Join(dir, "boardhelp")).Output()
		if err != nil {
			return fmt.Errorf("go run ./.ci/boardhelp: %w", err)
		}
		*gowork = strings.TrimSpace(string(out))
	}
	if *gowork != "off" {
		workEnv = []string{"GOWORK=" + *gowork}
	}

	extra := []string{}
	if *gcflags != "" {
		extra = []string{"-gcflags=" + *gcflags}
	}
	sizes := make([]int64, len(list))
	for i, t := range list {
		bin := filepath.Join(dir, "uploader-"+t.name)
		if err := goBuild(t.env, slices.Concat(buildArgs, extra, []string{"-ldflags", "-s -w", "-o", bin, "./cmd/uploader"})); err != nil {
			return err
		}
		fi, err := os.Stat(bin)
		if err != nil {
			return err
		}
		sizes[i] = fi.Size()
	}
	// The same mipsle build with urfave/cli's own template help, for comparison.
	var plain int64
	if len(workEnv) > 0 {
		bin := filepath.Join(dir, "uploader-plain")
		saved := workEnv
		workEnv = []string{"GOWORK=off"}
		err := goBuild(targets[0].env, slices.Concat(buildArgs, extra, []string{"-ldflags", "-s -w", "-o", bin, "./cmd/uploader"}))
		workEnv = saved
		if err != nil {
			return err
		}
		fi, err := os.Stat(bin)
		if err != nil {
			return err
		}
		plain = fi.Size()
	}
	full := filepath.Join(dir, "uploader-full")
	if err := goBuild(targets[0].env, slices.Concat(buildArgs, extra, []string{"-o", full, "./cmd/uploader"})); err != nil {
		return err
	}
	modules, err := packageModules(targets[0].env)
	if err != nil {
		return err
	}
	m, err := measure(full, modules)
	if err != nil {
		return err
	}

	var out bytes.Buffer
	cmdline := "CGO_ENABLED=0 GOOS=linux GOARCH=mipsle GOMIPS=softfloat go " + strings.Join(buildArgs, " ")
	if len(workEnv) > 0 {
		cmdline = "GOWORK=$(go run ./.ci/boardhelp) " + cmdline
	}
	if *gcflags != "" {
		cmdline += " -gcflags=" + *gcflags
	}
	cmdline += ` -ldflags "-s -w" ./cmd/uploader`
	writeReport(&out, list, sizes, plain, m, *top, cmdline)
	if *update == "" {
		_, err := stdout.Write(out.Bytes())
		return err
	}
	return replaceSection(*update, out.String())
}

func goBuild(env, args []string) error {
	cmd := exec.Command("go", args...)
	cmd.Env = slices.Concat(os.Environ(), []string{"CGO_ENABLED=0"}, workEnv, env)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s go %s: %w: %s", strings.Join(env, " "), strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return nil
}

// packageModules maps every package of the board build to its module
// ("std" for the standard library).
func packageModules(env []string) (map[string]string, error) {
	cmd := exec.Command("go", "list", "-deps", "-tags", "board,urfave_cli_no_docs", "-f", "{{.ImportPath}} {{if .Standard}}std{{else}}{{.Module.Path}}{{end}}", "./cmd/uploader")
	cmd.Env = slices.Concat(os.Environ(), []string{"CGO_ENABLED=0"}, workEnv, env)
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("go list: %w", err)
	}
	mods := make(map[string]string)
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		pkg, mod, ok := strings.Cut(line, " ")
		if !ok {
			return nil, fmt.Errorf("go list printed %q", line)
		}
		mods[pkg] = mod
	}
	mods["main"] = mods["github.com/nbiot-uploader/uploader/cmd/uploader"]
	return mods, nil
}

// measurement is where the bytes of one binary go.
type measurement struct {
	pkgs    map[string]int64 // by package
	mods    map[string]int64 // by module ("std", or a module path)
	other   map[string]int64 // symbols of no package (type:*, go:func.*)
	file    int64            // bytes of file-backed sections that hold symbols
	symbols int64            // bytes attributed to symbols
}

// measure adds up the symbols of an unstripped ELF binary.
func measure(path string, modules map[string]string) (*measurement, error) {
	f, err := elf.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	syms, err := f.Symbols()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	m := &measurement{pkgs: map[string]int64{}, mods: map[string]int64{}, other: map[string]int64{}}
	for _, s := range f.Sections {
		if s.Type != elf.SHT_NOBITS && s.Flags&elf.SHF_ALLOC != 0 {
			m.file += int64(s.Size)
		}
	}
	for _, s := range syms {
		if int(s.Section) <= 0 || int(s.Section) >= len(f.Sections) || s.Size == 0 {
			continue
		}
		if f.Sections[s.Section].Type == elf.SHT_NOBITS {
			continue
		}
		size := int64(s.Size)
		m.symbols += size
		pkg := symbolPackage(s.Name)
		if pkg == "" {
			m.other[s.Name] += size
			continue
		}
		mod, ok := modules[pkg]
		if !ok {
			mod = "std" // packages the linker adds
			if first, _, _ := strings.Cut(pkg, "/"); strings.Contains(first, ".") {
				mod = pkg
			}
		}
		m.pkgs[pkg] += size
		m.mods[mod] += size
	}
	return m, nil
}

// symbolPackage is the package a Go symbol belongs to, or "" for the
// linker's tables (type:*, go:func.*, go:itab...).
func symbolPackage(name string) string {
	if strings.HasPrefix(name, "go:") || strings.HasPrefix(name, "type:") || !strings.Contains(name, ".") {
		return ""
	}
	if i := strings.IndexAny(name, "[("); i >= 0 {
		name = name[:i] // generic shapes and method receivers
	}
	slash := strings.LastIndex(name, "/")
	dot := strings.Index(name[slash+1:], ".")
	if dot < 0 {
		return ""
	}
	return name[:slash+1+dot]
}

func writeReport(w io.Writer, list []target, sizes []int64, plain int64, m *measurement, top int, cmdline string) {
	fmt.Fprintf(w, "%s\n\n## Board binary size\n\n", sectionBegin)
	fmt.Fprintf(w, "Stripped, as `bash .ci/run` builds them (the size a board's flash holds):\n\n")
	fmt.Fprintf(w, "| target | bytes | MiB |\n| --- | ---: | ---: |\n")
	for i, t := range list {
		fmt.Fprintf(w, "| %s | %d | %.2f |\n", t.name, sizes[i], float64(sizes[i])/(1<<20))
	}
	if plain > 0 {
		fmt.Fprintf(w, "\nThe same linux/mipsle build without `.ci/boardhelp` (urfave/cli rendering its\nhelp with text/template, whose method calls make the linker keep every\nexported method): %d bytes (%.2f MiB).\n", plain, float64(plain)/(1<<20))
	}
	fmt.Fprintf(w, "\nWhere the linux/mipsle bytes go, from the symbol table of the same build\nunstripped (`go tool nm -size`); each symbol counts for its package.\n")
	fmt.Fprintf(w, "Stripping removes the symbol table and DWARF, not the function table\n(pclntab), so the percentages hold for the stripped binary. Command:\n\n    %s\n\n", cmdline)

	fmt.Fprintf(w, "| module | bytes | share |\n| --- | ---: | ---: |\n")
	for _, kv := range sorted(m.mods) {
		fmt.Fprintf(w, "| %s | %d | %.1f %% |\n", kv.k, kv.v, pct(kv.v, m.file))
	}
	var other int64
	for _, v := range m.other {
		other += v
	}
	fmt.Fprintf(w, "| linker tables with a symbol (type descriptors, func tables) | %d | %.1f %% |\n", other, pct(other, m.file))
	fmt.Fprintf(w, "| no symbol (pclntab: function names, line and stack maps; strings) | %d | %.1f %% |\n", m.file-m.symbols, pct(m.file-m.symbols, m.file))
	fmt.Fprintf(w, "| **file-backed sections** | **%d** | |\n\n", m.file)

	fmt.Fprintf(w, "Top %d packages:\n\n| package | bytes | share |\n| --- | ---: | ---: |\n", top)
	for i, kv := range sorted(m.pkgs) {
		if i == top {
			break
		}
		fmt.Fprintf(w, "| %s | %d | %.1f %% |\n", kv.k, kv.v, pct(kv.v, m.file))
	}
	fmt.Fprintf(w, "\n%s\n", sectionEnd)
}

type kv struct {
	k string
	v int64
}

func sorted(m map[string]int64) []kv {
	out := make([]kv, 0, len(m))
	for k, v := range m {
		out = append(out, kv{k, v})
	}
	slices.SortFunc(out, func(a, b kv) int { return cmp.Or(cmp.Compare(b.v, a.v), strings.Compare(a.k, b.k)) })
	return out
}

func pct(v, total int64) float64 { return 100 * float64(v) / float64(total) }

// replaceSection writes section over the one between the markers in path,
// or appends it when the file has none.
func replaceSection(path, section string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	s := string(data)
	begin := strings.Index(s, sectionBegin)
	end := strings.Index(s, sectionEnd)
	switch {
	case begin < 0 && end < 0:
		s = strings.TrimRight(s, "\n") + "\n\n" + section
	case begin >= 0 && end > begin:
		s = s[:begin] + section + strings.TrimPrefix(s[end+len(sectionEnd):], "\n")
	default:
		return errors.New(path + ": the size section's markers are broken; fix them by hand")
	}
	return os.WriteFile(path, []byte(s), 0o644)
}
