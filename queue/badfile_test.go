package queue

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"go.etcd.io/bbolt"
)

// Ensure files that are not usable queues give a clear error naming the path, never a panic,
// and are left exactly as they were.
func TestBadFiles(t *testing.T) {
	tests := []struct {
		name string
		make func(t *testing.T, path string)
		want error
	}{
		{"empty file", func(t *testing.T, path string) { writeFile(t, path, nil) }, ErrNotQueue},
		{"text file", func(t *testing.T, path string) {
			writeFile(t, path, bytes.Repeat([]byte("temperature=21.5\n"), 1000))
		}, ErrNotQueue},
		{"short garbage", func(t *testing.T, path string) { writeFile(t, path, []byte{0xed, 0xda, 0x0c}) }, ErrNotQueue},
		{"bbolt without queue metadata", func(t *testing.T, path string) {
			db, err := bbolt.Open(path, 0o600, nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := db.Update(func(tx *bbolt.Tx) error { _, err := tx.CreateBucket([]byte("other")); return err }); err != nil {
				t.Fatal(err)
			}
			if err := db.Close(); err != nil {
				t.Fatal(err)
			}
		}, ErrNotQueue},
		{"newer format", func(t *testing.T, path string) {
			fillQueue(t, path, 10)
			setMeta(t, path, keyFormat, binary.BigEndian.AppendUint32(nil, formatVersion+1))
		}, ErrNewerFormat},
		{"truncated", func(t *testing.T, path string) {
			fillQueue(t, path, 3000)
			info, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.Truncate(path, info.Size()/2); err != nil {
				t.Fatal(err)
			}
		}, ErrCorrupt},
		{"both meta pages damaged", func(t *testing.T, path string) {
			fillQueue(t, path, 10)
			pageSize := os.Getpagesize()
			corruptAt(t, path, 40, 8)          // meta 0: inside the checksummed part
			corruptAt(t, path, pageSize+40, 8) // meta 1
		}, ErrCorrupt},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "q.db")
			tt.make(t, path)
			before, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			q, err := Open(path, nil)
			assertBadFile(t, err, tt.want, path)
			if q != nil {
				t.Fatal("Open returned a handle with its error")
			}
			// A handle opened before the damage must report the same on every call.
			q = handleWithoutOpen(path)
			_, err = q.Enqueue(rec("t", "x"))
			assertBadFile(t, err, tt.want, path)
			_, err = q.Read(0, 10, 0)
			assertBadFile(t, err, tt.want, path)
			_, err = q.Stats()
			assertBadFile(t, err, tt.want, path)
			after, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(before, after) {
				t.Fatalf("the file was modified by a failed open")
			}
		})
	}
}

// Ensure damaged data pages are reported as ErrCorrupt by Check and by reads that meet them,
// without crashing the process.
func TestCorruptDataPages(t *testing.T) {
	path := filepath.Join(t.TempDir(), "q.db")
	fillQueue(t, path, 3000)
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	pageSize := int64(os.Getpagesize())
	rng := rand.New(rand.NewPCG(1, 2))
	garbage := make([]byte, pageSize)
	for i := range garbage {
		garbage[i] = byte(rng.Uint32())
	}
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	for page := int64(2); page < info.Size()/pageSize; page += 3 {
		if _, err := f.WriteAt(garbage, page*pageSize); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	q, err := Open(path, nil)
	if err != nil {
		assertBadFile(t, err, ErrCorrupt, path)
		return
	}
	assertBadFile(t, q.Check(), ErrCorrupt, path)
	var after uint64
	for {
		batch, err := q.Read(after, 100, 0)
		if err != nil {
			assertBadFile(t, err, ErrCorrupt, path)
			return
		}
		if len(batch) == 0 {
			t.Fatal("read the whole damaged file without an error")
		}
		after = batch[len(batch)-1].Seq
	}
}

// Ensure one damaged meta page falls back to the other and loses nothing committed before the
// last transaction.
func TestOneMetaPageDamaged(t *testing.T) {
	path := filepath.Join(t.TempDir(), "q.db")
	fillQueue(t, path, 10)
	q := mustOpenPath(t, path, nil)
	mustEnqueue(t, q, rec("t", "last"))
	corruptAt(t, path, 40, 8)
	recs := mustRead(t, q, 0, 100, 0)
	if len(recs) < 10 {
		t.Fatalf("after damaging one meta page, %d records readable, want at least 10", len(recs))
	}
}

// Ensure a read-only location refuses writes with an error naming the path while reads keep
// working and nothing stored is lost.
func TestReadOnlyDirectory(t *testing.T) {
	dir := t.TempDir()
	if os.Geteuid() == 0 {
		// root ignores permission bits: use a read-only mount instead.
		dir = mountTmpfs(t, "size=4m")
	}
	path := filepath.Join(dir, "q.db")
	q := mustOpenPathNoCheck(t, path)
	seqs := mustEnqueue(t, q, rec("t", "1"), rec("t", "2"))
	if os.Geteuid() == 0 {
		if out, err := exec.Command("mount", "-o", "remount,ro", dir).CombinedOutput(); err != nil {
			t.Fatalf("remount ro: %v: %s", err, out)
		}
		t.Cleanup(func() { _ = exec.Command("mount", "-o", "remount,rw", dir).Run() })
	} else {
		for _, p := range []string{path, dir} {
			if err := os.Chmod(p, 0o555); err != nil {
				t.Fatal(err)
			}
		}
		t.Cleanup(func() { _ = os.Chmod(dir, 0o755); _ = os.Chmod(path, 0o644) })
	}
	_, err := q.Enqueue(rec("t", "3"))
	if err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("Enqueue in a read-only directory=%v, want an error naming %s", err, path)
	}
	if err := q.Ack(seqs[:1]); err == nil {
		t.Fatal("Ack in a read-only directory succeeded")
	}
	s, err := q.Stats()
	if err != nil || s.Depth != 2 {
		t.Fatalf("Stats() in a read-only directory=%+v, %v, want depth 2", s, err)
	}
	if got, err := q.WindowSummary(); err != nil || got != nil {
		t.Fatalf("WindowSummary()=%q, %v", got, err)
	}
}

// Ensure a full disk fails the enqueue with a clear error and keeps everything stored before.
func TestDiskFull(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("skipping: needs root to mount a size-limited tmpfs (CI runs as root)")
	}
	dir := mountTmpfs(t, "size=1m")
	path := filepath.Join(dir, "q.db")
	q := mustOpenPathNoCheck(t, path)
	payload := bytes.Repeat([]byte("x"), 2000)
	var stored []uint64
	var err error
	for i := 0; i < 10000; i++ {
		var seqs []uint64
		seqs, err = q.Enqueue(Record{Topic: "t", Payload: payload}, Record{Topic: "t", Payload: payload})
		if err != nil {
			break
		}
		stored = append(stored, seqs...)
	}
	if err == nil {
		t.Fatal("filled a 1 MiB tmpfs without an error")
	}
	if !strings.Contains(err.Error(), path) {
		t.Fatalf("disk-full error %q does not name %s", err, path)
	}
	t.Logf("disk full after %d records: %v", len(stored), err)
	if err := q.Check(); err != nil {
		t.Fatalf("Check() after disk full=%v", err)
	}
	var got []uint64
	for {
		batch := mustRead(t, q, lastSeq(got), 50, 0)
		if len(batch) == 0 {
			break
		}
		got = append(got, seqsOf(batch)...)
	}
	if len(got) != len(stored) || (len(got) > 0 && got[len(got)-1] != stored[len(stored)-1]) {
		t.Fatalf("after disk full, %d records readable, want %d", len(got), len(stored))
	}
	// Draining makes room again (freed pages are reused).
	if err := q.Ack(got); err != nil {
		t.Fatalf("Ack() on a full disk=%v", err)
	}
	mustEnqueue(t, q, Record{Topic: "t", Payload: payload})
}

// handleWithoutOpen builds the handle Open would have returned, without Open's checks.
func handleWithoutOpen(path string) *Queue {
	opts := (*Options)(nil).withDefaults()
	return &Queue{path: path, opts: opts, log: opts.Logger}
}

func lastSeq(seqs []uint64) uint64 {
	if len(seqs) == 0 {
		return 0
	}
	return seqs[len(seqs)-1]
}

func mountTmpfs(t *testing.T, opts string) string {
	t.Helper()
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", opts, "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("skipping: cannot mount tmpfs: %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	return dir
}

// mustOpenPathNoCheck opens a queue whose cleanup must not touch the file (it may be on a
// mount that is gone by then).
func mustOpenPathNoCheck(t *testing.T, path string) *Queue {
	t.Helper()
	q, err := Open(path, nil)
	if err != nil {
		t.Fatalf("Open(%s)=%v", path, err)
	}
	return q
}

func assertBadFile(t *testing.T, err, want error, path string) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("err=%v, want %v", err, want)
	}
	if !strings.Contains(err.Error(), path) {
		t.Fatalf("err=%q does not name %s", err, path)
	}
}

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// fillQueue creates a queue at path holding n records.
func fillQueue(t testing.TB, path string, n int) {
	t.Helper()
	q, err := Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	recs := make([]Record, n)
	for i := range recs {
		recs[i] = rec("site/1/temp", strings.Repeat("p", 40))
	}
	if _, err := q.Enqueue(recs...); err != nil {
		t.Fatal(err)
	}
}

func setMeta(t *testing.T, path string, key, value []byte) {
	t.Helper()
	db, err := bbolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *bbolt.Tx) error { return tx.Bucket(bucketMeta).Put(key, value) }); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
}

func corruptAt(t *testing.T, path string, off, n int) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(bytes.Repeat([]byte{0xa5}, n), int64(off)); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}
