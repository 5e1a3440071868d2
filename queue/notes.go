package queue

import (
	"bytes"
	"errors"
	"fmt"
)

// notePrefix keeps notes apart from the queue's own meta keys.
const notePrefix = "note/"

// maxNoteBytes bounds one note: notes are small bookkeeping, not records.
const maxNoteBytes = 64 << 10

// Note returns a copy of the note stored under name, or nil, nil when
// there is none. Notes are small opaque values the queue keeps for its
// users in the same file (the uplink counts the windows it skipped there),
// fsync'd like everything else and copied by Compact.
func (q *Queue) Note(name string) ([]byte, error) {
	var out []byte
	err := q.view(func(t *txn) error {
		if v := t.meta.Get([]byte(notePrefix + name)); v != nil {
			out = bytes.Clone(v)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read note %q in %s: %w", name, q.path, err)
	}
	return out, nil
}

// UpdateNote replaces the note stored under name with what fn makes of
// the old one (nil when there is none), in one transaction, so two
// processes updating the same note do not lose each other's change. fn
// returning empty data deletes the note; an error from fn changes nothing.
func (q *Queue) UpdateNote(name string, fn func(old []byte) ([]byte, error)) error {
	if name == "" {
		return errors.New("empty note name")
	}
	key := []byte(notePrefix + name)
	err := q.update(func(t *txn) error {
		data, err := fn(bytes.Clone(t.meta.Get(key)))
		if err != nil {
			return err
		}
		if len(data) == 0 {
			return t.meta.Delete(key)
		}
		if len(data) > maxNoteBytes {
			return fmt.Errorf("note %q is %d bytes, more than %d", name, len(data), maxNoteBytes)
		}
		return t.meta.Put(key, bytes.Clone(data))
	})
	if err != nil {
		return fmt.Errorf("update note %q in %s: %w", name, q.path, err)
	}
	return nil
}
