package e2e

import (
	"context"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

var (
	flagKills = flag.Int("e2e.kills", 50, "how many times TestPowerCuts SIGKILLs a running flush")
	flagSeed  = flag.Int64("e2e.seed", 0, "seed of TestPowerCuts' random kill moments (0 = from the clock; the seed used is logged)")
	flagRace  = flag.Bool("e2e.race-binary", raceEnabled, "build the uploader binary with -race (default: when the suite runs with -race)")
)

// uploaderBin is the binary TestMain built; empty under -short.
var uploaderBin string

var (
	sourcesOnce sync.Once
	sourcesErr  error
)

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		os.Exit(m.Run()) // every test skips itself
	}
	dir, err := os.MkdirTemp("", "uploader-e2e-bin-")
	if err != nil {
		fmt.Fprintf(os.Stderr, "e2e: temp dir: %v\n", err)
		os.Exit(1)
	}
	uploaderBin, err = buildUploader(dir)
	if err != nil {
		os.RemoveAll(dir)
		fmt.Fprintf(os.Stderr, "e2e: %v\n", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// readSources reads every Go source of the module and go.mod/go.sum. The
// suite imports none of the product's packages (it runs the binary), so
// without this `go test` would replay a cached pass after the product
// changed: it invalidates a cached result only when a file the test read
// while tests ran (not in TestMain before m.Run) has changed.
func readSources(root string) error {
	return filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() {
			if path != root && (strings.HasPrefix(name, ".") || name == "testdata") {
				return filepath.SkipDir
			}
			return nil
		}
		if strings.HasSuffix(name, ".go") || name == "go.mod" || name == "go.sum" {
			_, err = os.ReadFile(path)
		}
		return err
	})
}

// buildUploader compiles cmd/uploader into dir. A race-enabled binary turns
// a data race in any of the product's processes into a failed scenario
// (exit code 66 and the report on stderr).
func buildUploader(dir string) (string, error) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("find the go tool to build the uploader: %w", err)
	}
	out := filepath.Join(dir, "uploader")
	args := []string{"build", "-o", out}
	if *flagRace {
		args = append(args, "-race")
	}
	args = append(args, "github.com/nbiot-uploader/uploader/cmd/uploader")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, goTool, args...)
	if msg, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go %v: %w\n%s", args, err, msg)
	}
	return out, nil
}

// requireE2E skips the calling test under -short: the suite starts dozens
// of processes and takes minutes.
func requireE2E(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end suite: skipped under -short")
	}
	sourcesOnce.Do(func() { sourcesErr = readSources(filepath.Join("..", "..", "..")) })
	if sourcesErr != nil {
		t.Fatalf("read the module's sources: %v", sourcesErr)
	}
}
