package bridge

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/nbiot-uploader/uploader/uplink/pack"
)

// DefaultRefusedMaxBytes bounds the file of refused readings: past it a
// refused reading is only logged, so a broker that refuses everything
// cannot fill the disk.
const DefaultRefusedMaxBytes = 64 << 20

// RefusedLine is one line of the refused-readings file: a reading the
// broker refused for good, with what is needed to send it again once the
// cause (an ACL, a topic rule) is fixed. Payload holds a payload that is
// valid UTF-8, PayloadBase64 any other.
type RefusedLine struct {
	ClientID      string `json:"client_id"`
	Seq           uint64 `json:"seq"`
	Time          string `json:"time"` // when the site took the reading (RFC 3339, UTC)
	Topic         string `json:"topic"`
	Payload       string `json:"payload,omitempty"`
	PayloadBase64 string `json:"payload_base64,omitempty"`
	QoS           byte   `json:"qos"`
	Retain        bool   `json:"retain"`
	Reason        string `json:"reason"` // the PUBACK reason code, "0x87"
	RefusedAt     string `json:"refused_at"`
}

// RefusedLog appends the readings the broker refused for good to a file,
// one JSON object per line, synced before Append returns: the bridge
// records such a reading as done (its pack can then be acknowledged and
// the packs behind it go on), so this file is the only copy left. An
// operator can read it while the bridge runs, and rotate it by truncating
// (copytruncate) or moving it away (a new file is started on the next
// refusal). Safe for concurrent use.
type RefusedLog struct {
	path     string
	maxBytes int64
	mu       sync.Mutex
}

// OpenRefusedLog checks that path can be appended to (creating it when
// missing) and returns the log. maxBytes 0 means DefaultRefusedMaxBytes.
func OpenRefusedLog(path string, maxBytes int64) (*RefusedLog, error) {
	if maxBytes == 0 {
		maxBytes = DefaultRefusedMaxBytes
	}
	if maxBytes < 0 {
		return nil, fmt.Errorf("refused readings file %s: max bytes %d is negative", path, maxBytes)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("refused readings file: %w", err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("refused readings file: %w", err)
	}
	return &RefusedLog{path: path, maxBytes: maxBytes}, nil
}

// Path is the file's path.
func (l *RefusedLog) Path() string { return l.path }

// Refusal is one reading the broker refused for good, with its reason.
type Refusal struct {
	Reading pack.Reading
	Reason  byte
}

// Append writes the refused readings of one client id, in order, and
// syncs them once. kept is how many of them, from the first, went into
// the file; the rest, with no error, would have taken it past its bound
// and are kept nowhere (the caller says so in its log).
func (l *RefusedLog) Append(clientID string, refusals []Refusal, at time.Time) (kept int, err error) {
	lines := make([][]byte, len(refusals))
	for i, rf := range refusals {
		r := rf.Reading
		line := RefusedLine{
			ClientID: clientID, Seq: r.Seq, Time: r.Time.UTC().Format(time.RFC3339Nano), Topic: r.Topic,
			QoS: r.QoS, Retain: r.Retain, Reason: fmt.Sprintf("0x%02x", rf.Reason), RefusedAt: at.UTC().Format(time.RFC3339Nano),
		}
		if utf8.Valid(r.Payload) {
			line.Payload = string(r.Payload)
		} else {
			line.PayloadBase64 = base64.StdEncoding.EncodeToString(r.Payload)
		}
		b, err := json.Marshal(line)
		if err != nil {
			return 0, fmt.Errorf("refused reading seq %d of %q: %w", r.Seq, clientID, err)
		}
		lines[i] = append(b, '\n')
	}

	l.mu.Lock()
	defer l.mu.Unlock()
	// Opened for each batch: refusals are rare, and an operator may have
	// moved or truncated the file since the last one.
	f, err := os.OpenFile(l.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return 0, fmt.Errorf("refused readings file: %w", err)
	}
	fi, err := f.Stat()
	var buf []byte
	if err == nil {
		size := fi.Size()
		for _, b := range lines {
			if size+int64(len(buf)+len(b)) > l.maxBytes {
				break
			}
			buf = append(buf, b...)
			kept++
		}
	}
	if err == nil && len(buf) > 0 {
		if _, err = f.Write(buf); err == nil {
			err = f.Sync()
		}
		if err != nil {
			// A full disk may leave part of a line: cut it off, so the
			// next line does not join it.
			_ = f.Truncate(fi.Size())
		}
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return 0, fmt.Errorf("refused readings file %s: %w", l.path, err)
	}
	return kept, nil
}
