// Command layers checks the module's import layers: that every package
// depends only on what its doc comment allows (rules.go keeps each rule with
// the sentence it comes from), that only cmd/uploader imports package uplink,
// and that no product package imports a test helper package
// (uplink/brokertest, uplink/testkit, uplink/modemsim/simtest). It reads the
// non-test dependencies the go command reports (go list -deps) for each
// build (the default one and the board build) and, for the end-to-end
// suite, its test imports.
//
//	go run ./.ci/layers            # from the module root; CI runs it in .ci/run
//
// It prints one line per violation, naming the package, the forbidden import
// path and the chain of imports that leads there, and exits 1; it exits 0
// and prints a one-line summary when every rule holds, and 2 when the go
// command fails or a rule names a package that does not exist.
//
// It must not be imported (package main) and depends only on the standard
// library.
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strings"
)

func main() {
	violations, summary, err := check(rules)
	if err != nil {
		fmt.Fprintln(os.Stderr, "layers:", err)
		os.Exit(2)
	}
	for _, v := range violations {
		fmt.Fprintln(os.Stderr, "layers:", v)
	}
	if len(violations) > 0 {
		fmt.Fprintf(os.Stderr, "layers: %d violation(s)\n", len(violations))
		os.Exit(1)
	}
	fmt.Println("layers:", summary)
}

// pkg is what go list reports of one package.
type pkg struct {
	ImportPath   string
	Standard     bool
	DepOnly      bool
	Imports      []string
	Deps         []string
	TestImports  []string
	XTestImports []string
	Error        *struct{ Err string }
}

// build is the package graph of the module for one set of build tags.
type build struct {
	pkgs   map[string]*pkg
	module []string // the module's own packages (go list ./...)
}

func check(rules []rule) (violations []string, summary string, err error) {
	modPath, err := goCmd("list", "-m")
	if err != nil {
		return nil, "", err
	}
	modPath = strings.TrimSpace(modPath)
	builds := make(map[string]*build)
	for _, r := range rules {
		if builds[r.tags] != nil {
			continue
		}
		b, err := listBuild(r.tags)
		if err != nil {
			return nil, "", err
		}
		builds[r.tags] = b
	}
	rel := func(p string) string {
		if p == modPath {
			return "."
		}
		if s, ok := strings.CutPrefix(p, modPath+"/"); ok {
			return s
		}
		return p
	}
	// Every package of the module has a rule for the default build.
	for _, p := range builds[""].module {
		if !slices.ContainsFunc(rules, func(r rule) bool { return r.tags == "" && r.pkg == rel(p) }) {
			violations = append(violations, fmt.Sprintf("%s has no layer rule: add one to .ci/layers/rules.go from its doc comment", rel(p)))
		}
	}
	helpers := map[string]bool{}
	for _, r := range rules {
		if r.helper {
			helpers[r.pkg] = true
		}
	}
	checked := 0
	for _, r := range rules {
		b := builds[r.tags]
		p := b.pkgs[modPath+"/"+r.pkg]
		if p == nil || p.DepOnly {
			if r.optional {
				continue
			}
			return nil, "", fmt.Errorf("rule for %s (tags %q): no such package in the module", r.pkg, r.tags)
		}
		if p.Error != nil {
			return nil, "", fmt.Errorf("%s: %s", r.pkg, p.Error.Err)
		}
		checked++
		where := r.pkg
		if r.tags != "" {
			where += " (-tags " + r.tags + ")"
		}
		var offenders []offender
		for _, d := range p.Deps {
			dp := b.pkgs[d]
			std := dp != nil && dp.Standard
			name := rel(d)
			var why string
			switch {
			case matches(r.deny, name) && (!std || slices.Contains(p.Imports, d)):
				why = r.why
			case !std && r.only != nil && !matches(r.only, name):
				why = r.why
			case helpers[name] && !r.helper && !slices.Contains(r.mayUseHelpers, name):
				why = name + " is a test helper package: no product package may import it"
			case name == "uplink" && !slices.Contains(uplinkImporters, r.pkg):
				why = "only " + strings.Join(uplinkImporters, ", ") + " may import package uplink"
			default:
				continue
			}
			chain := importChain(b.pkgs, p.ImportPath, d)
			if why == r.why && !matches(r.deny, name) && viaAllowed(r.only, chain) {
				continue
			}
			offenders = append(offenders, offender{d, why, chain})
		}
		// Name only the nearest offenders: bbolt is not reported again
		// when it comes in through a forbidden queue.
		for _, o := range offenders {
			if slices.ContainsFunc(offenders, func(e offender) bool {
				return e.path != o.path && slices.Contains(o.chain, e.path)
			}) {
				continue
			}
			chain := make([]string, len(o.chain))
			for i, c := range o.chain {
				chain[i] = rel(c)
			}
			violations = append(violations, fmt.Sprintf("%s must not import %s (%s)\n\trule: %s", where, o.path, strings.Join(chain, " -> "), o.why))
		}
		for _, t := range slices.Concat(p.TestImports, p.XTestImports) {
			if slices.Contains(r.testDeny, rel(t)) {
				violations = append(violations, fmt.Sprintf("%s tests must not import %s\n\trule: %s", where, t, r.why))
			}
		}
	}
	return violations, fmt.Sprintf("%d rules hold over %d packages (%d builds)", checked, len(builds[""].module), len(builds)), nil
}

// offender is one forbidden dependency and the imports that lead to it.
type offender struct {
	path, why string
	chain     []string
}

// matches reports whether name is one of list or, for a path outside the
// module (its first element has a dot), lies under one of them: "uplink"
// is that package alone, "go.etcd.io/bbolt" all of bbolt.
func matches(list []string, name string) bool {
	for _, l := range list {
		if name == l || external(l) && strings.HasPrefix(name, l+"/") {
			return true
		}
	}
	return false
}

// external reports whether a rule's path lies outside the module.
func external(path string) bool {
	first, _, _ := strings.Cut(path, "/")
	return strings.Contains(first, ".")
}

// viaAllowed reports whether the chain reaches its end through an allowed
// third-party package: what go.bug.st/serial imports is its own business.
func viaAllowed(only, chain []string) bool {
	for _, c := range chain[1 : len(chain)-1] {
		if external(c) && matches(only, c) {
			return true
		}
	}
	return false
}

// importChain is the shortest chain of imports from "from" to "to".
func importChain(pkgs map[string]*pkg, from, to string) []string {
	prev := map[string]string{from: ""}
	queue := []string{from}
	for len(queue) > 0 {
		cur := queue[0]
		queue = queue[1:]
		if cur == to {
			var chain []string
			for c := to; c != ""; c = prev[c] {
				chain = append(chain, c)
			}
			slices.Reverse(chain)
			return chain
		}
		if p := pkgs[cur]; p != nil {
			for _, next := range p.Imports {
				if _, seen := prev[next]; !seen {
					prev[next] = cur
					queue = append(queue, next)
				}
			}
		}
	}
	return []string{from, "...", to}
}

// listBuild runs go list -deps over the module with tags.
func listBuild(tags string) (*build, error) {
	args := []string{"list", "-e", "-deps", "-json=ImportPath,Standard,DepOnly,Imports,Deps,TestImports,XTestImports,Error"}
	if tags != "" {
		args = append(args, "-tags", tags)
	}
	out, err := goCmd(append(args, "./...")...)
	if err != nil {
		return nil, err
	}
	b := &build{pkgs: make(map[string]*pkg)}
	dec := json.NewDecoder(strings.NewReader(out))
	for {
		p := new(pkg)
		if err := dec.Decode(p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return nil, fmt.Errorf("go list output: %w", err)
		}
		b.pkgs[p.ImportPath] = p
		if !p.DepOnly {
			b.module = append(b.module, p.ImportPath)
		}
	}
	if len(b.module) == 0 {
		return nil, errors.New("go list ./... found no packages: run from the module root")
	}
	return b, nil
}

func goCmd(args ...string) (string, error) {
	cmd := exec.Command("go", args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("go %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return string(out), nil
}
