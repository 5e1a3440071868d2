package queue

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// dirEntries lists dir, or nil when it does not exist.
func dirEntries(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

func TestNoCreateMissingQueueIsErrNoQueueAndCreatesNothing(t *testing.T) {
	root := t.TempDir()
	tests := []struct {
		name string
		path string
	}{
		{"missing file in an existing directory", filepath.Join(root, "queue.db")},
		{"missing directory", filepath.Join(root, "typo", "deeper", "queue.db")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Open(tt.path, &Options{NoCreate: true})
			if !errors.Is(err, ErrNoQueue) {
				t.Fatalf("Open(NoCreate)=%v, want ErrNoQueue", err)
			}
			if want := "no queue at " + tt.path; err.Error() != want {
				t.Errorf("error %q, want %q", err, want)
			}
			if got := dirEntries(t, root); len(got) != 0 {
				t.Errorf("Open(NoCreate) of a missing queue left %v in %s", got, root)
			}
		})
	}
}

func TestNoCreateOpensAnExistingQueue(t *testing.T) {
	path := filepath.Join(t.TempDir(), "queue.db")
	w := mustOpenPath(t, path, nil)
	mustEnqueue(t, w, rec("t", "1"), rec("t", "2"))

	r, err := Open(path, &Options{NoCreate: true})
	if err != nil {
		t.Fatalf("Open(NoCreate) of an existing queue: %v", err)
	}
	defer r.Close()
	if s := mustStats(t, r); s.Depth != 2 {
		t.Fatalf("Stats().Depth=%d through a NoCreate handle, want 2", s.Depth)
	}

	// Deleted while the handle lives: the next call reports it instead of
	// starting an empty queue whose sequence numbers restart at 1.
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Stats(); !errors.Is(err, ErrNoQueue) {
		t.Fatalf("Stats() after the file was deleted=%v, want ErrNoQueue", err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a NoCreate handle recreated the deleted queue file (stat: %v)", err)
	}
	if _, err := r.Enqueue(rec("t", "3")); !errors.Is(err, ErrNoQueue) || !strings.Contains(err.Error(), path) {
		t.Fatalf("Enqueue() after the file was deleted=%v, want ErrNoQueue naming the path", err)
	}
}

func TestRejectedCountIsDurable(t *testing.T) {
	path := filepath.Join(t.TempDir(), "queue.db")
	opts := &Options{MaxRecords: 1, Policy: RejectNew}
	q := mustOpenPath(t, path, opts)
	mustEnqueue(t, q, rec("t", "1"))
	for range 3 {
		if _, err := q.Enqueue(rec("t", "x"), rec("t", "y")); !errors.Is(err, ErrFull) {
			t.Fatalf("Enqueue() at the limit=%v, want ErrFull", err)
		}
	}
	// A new handle (another process, after a reboot) reads the count from
	// the file, and Compact keeps it.
	other := mustOpenPath(t, path, nil)
	if err := other.Compact(); err != nil {
		t.Fatal(err)
	}
	if s := mustStats(t, other); s.Rejected != 6 || s.Depth != 1 {
		t.Fatalf("Stats() rejected=%d depth=%d from a new handle, want 6 and 1", s.Rejected, s.Depth)
	}
}
