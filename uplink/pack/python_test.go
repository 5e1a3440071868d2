package pack

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

const decoderMarker = "<!-- pack decoder: uplink/pack/python_test.go runs this block -->"

// readmeDecoder returns the Python decoder README.md shows.
func readmeDecoder(t *testing.T) string {
	t.Helper()
	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := strings.Cut(string(readme), decoderMarker)
	if !ok {
		t.Fatalf("README.md has no %q", decoderMarker)
	}
	after, ok = strings.CutPrefix(strings.TrimLeft(after, "\n"), "```python\n")
	if !ok {
		t.Fatal("README.md: the decoder marker is not followed by a ```python block")
	}
	code, _, ok := strings.Cut(after, "```")
	if !ok {
		t.Fatal("README.md: the decoder block does not end")
	}
	return code
}

// python3 returns the interpreter, or skips; CI sets
// UPLOADER_REQUIRE_PYTHON=1 so a missing python3 fails instead.
func python3(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("python3")
	if err != nil {
		if os.Getenv("UPLOADER_REQUIRE_PYTHON") != "" {
			t.Fatal("python3 not found and UPLOADER_REQUIRE_PYTHON is set")
		}
		t.Skip("python3 not found: README's decoder not checked")
	}
	return p
}

// TestPythonDecoder runs README's decoder, with nothing but Python's
// standard library, on packs this package made, and compares every field.
func TestPythonDecoder(t *testing.T) {
	py := python3(t)
	script := filepath.Join(t.TempDir(), "unpack.py")
	if err := os.WriteFile(script, []byte(readmeDecoder(t)), 0o600); err != nil {
		t.Fatal(err)
	}
	mixed := readings(30, jsonPayload)
	mixed[3].Retain, mixed[4].QoS, mixed[5].Payload = true, 2, nil
	mixed[6].Topic = "sites/Zürich/✓"
	mixed[7].Time = mixed[7].Time.AddDate(-80, 0, 0) // before 1970: a negative time
	tests := []struct {
		name string
		rs   []Reading
		c    Compression
	}{
		{"deflated", mixed, Deflate},
		{"stored", mixed, Stored},
		{"random payloads", readings(40, randomPayload(5)), Deflate},
		{"empty", nil, Deflate},
	}
	var e Encoder
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := e.Encode(nil, "site-7", tt.rs, tt.c)
			if err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(py, script)
			cmd.Stdin = bytes.NewReader(b)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("python3: %v: %s", err, stderr.String())
			}
			lines := strings.Split(strings.TrimSpace(string(out)), "\n")
			if len(tt.rs) == 0 {
				lines = lines[:0]
			}
			if len(lines) != len(tt.rs) {
				t.Fatalf("python printed %d readings, want %d", len(lines), len(tt.rs))
			}
			for i, line := range lines {
				var got struct {
					ClientID string `json:"client_id"`
					Seq      uint64
					TimeMS   int64 `json:"time_ms"`
					Topic    string
					QoS      byte
					Retain   bool
					Payload  string
				}
				if err := json.Unmarshal([]byte(line), &got); err != nil {
					t.Fatalf("line %d %q: %v", i, line, err)
				}
				want := tt.rs[i]
				pl, _ := base64.StdEncoding.DecodeString(got.Payload)
				if got.ClientID != "site-7" || got.Seq != want.Seq || got.TimeMS != want.Time.UnixMilli() || got.Topic != want.Topic ||
					got.QoS != want.QoS || got.Retain != want.Retain || !bytes.Equal(pl, want.Payload) {
					t.Fatalf("reading %d: python says %+v, want %+v", i, got, want)
				}
			}
		})
	}
	// Damaged packs: python refuses them too, printing nothing.
	good, _ := e.Encode(nil, "site-7", mixed, Deflate)
	flipped := bytes.Clone(good)
	flipped[len(flipped)/2] ^= 0x10
	for name, b := range map[string][]byte{"truncated": good[:len(good)-7], "flipped": flipped} {
		cmd := exec.Command(py, script)
		cmd.Stdin = bytes.NewReader(b)
		out, err := cmd.Output()
		if err == nil || len(out) != 0 {
			t.Errorf("%s pack: python exit %v, printed %d bytes; want an error and nothing printed", name, err, len(out))
		}
	}
}
