package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestStatusOfAMistypedDBIsAnErrorAndCreatesNothing: status is read-only;
// a --db that names no queue exits 1 with "no queue at PATH" and leaves
// no file or directory behind.
func TestStatusOfAMistypedDBIsAnErrorAndCreatesNothing(t *testing.T) {
	root := t.TempDir()
	tests := []struct {
		name string
		db   string
	}{
		{"missing file", filepath.Join(root, "queue.db")},
		{"missing directory", filepath.Join(root, "var", "lib", "uploadr", "queue.db")},
	}
	for _, tt := range tests {
		for _, form := range [][]string{nil, {"--json"}} {
			code, out, stderr := runApp(t, "", append([]string{"status", "--db", tt.db}, form...)...)
			if code != 1 {
				t.Errorf("%s %v: exit %d, want 1\nstdout %s\nstderr %s", tt.name, form, code, out, stderr)
			}
			if want := "uploader: no queue at " + tt.db + "\n"; stderr != want {
				t.Errorf("%s %v: stderr %q, want %q", tt.name, form, stderr, want)
			}
			if out != "" {
				t.Errorf("%s %v: printed a report for a queue that does not exist:\n%s", tt.name, form, out)
			}
		}
		ents, err := os.ReadDir(root)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range ents {
			t.Errorf("%s: status created %s", tt.name, filepath.Join(root, e.Name()))
		}
	}
}

// TestStatusShowsRejectedCount: records `enqueue` refused under
// --queue-policy reject-new are counted, and status shows the count.
func TestStatusShowsRejectedCount(t *testing.T) {
	db := tempDB(t)
	limits := []string{"--max-records", "2", "--queue-policy", "reject-new"}
	enqueue := func(stdin string) int {
		code, _, _ := runApp(t, stdin, append([]string{"enqueue", "--db", db, "--topic", "t", "--lines"}, limits...)...)
		return code
	}
	if code := enqueue("a\nb\n"); code != 0 {
		t.Fatalf("enqueue below the limit: exit %d", code)
	}
	for _, batch := range []string{"c\n", "d\ne\nf\n"} {
		if code := enqueue(batch); code != 1 {
			t.Fatalf("enqueue at the limit: exit %d, want 1", code)
		}
	}
	code, out, stderr := runApp(t, "", "status", "--db", db, "--json")
	if code != 0 {
		t.Fatalf("status: exit %d: %s", code, stderr)
	}
	var r statusReport
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("status --json: %v\n%s", err, out)
	}
	if r.Rejected != 4 || r.Depth != 2 {
		t.Errorf("status --json: rejected %d depth %d, want 4 and 2\n%s", r.Rejected, r.Depth, out)
	}
	_, out, _ = runApp(t, "", "status", "--db", db)
	if !strings.Contains(out, "rejected:       4 (") {
		t.Errorf("status text does not show 4 rejected:\n%s", out)
	}
}
