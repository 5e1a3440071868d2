package testkit

import (
	"bytes"
	"errors"
	"flag"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

// update is the one -update flag of every test binary that imports this
// package; test files must not declare their own (flag would panic on the
// second definition).
var update = flag.Bool("update", false, "rewrite the golden files in testdata instead of comparing with them")

// Update reports whether the test run was asked to rewrite golden files
// (go test -update).
func Update() bool { return *update }

// Golden compares got with the file at path and fails the test, naming
// the first difference, when they differ. With -update it writes got to
// path first (creating its directory), so the comparison passes and the
// change shows in git diff for review.
func Golden(t testing.TB, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatalf("golden %s: %v", path, err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatalf("golden %s: %v", path, err)
		}
	}
	want, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("golden file %s is missing (go test -run '%s' -update creates it)", path, t.Name())
	}
	if err != nil {
		t.Fatalf("golden %s: %v", path, err)
	}
	if bytes.Equal(got, want) {
		return
	}
	i := 0
	for i < len(got) && i < len(want) && got[i] == want[i] {
		i++
	}
	line := 1 + bytes.Count(got[:i], []byte("\n"))
	from := max(0, i-20)
	t.Errorf("output differs from %s at byte %d (line %d; got %d bytes, want %d; -update rewrites it):\n got  %q\n want %q",
		path, i, line, len(got), len(want), got[from:min(len(got), i+60)], want[from:min(len(want), i+60)])
}
