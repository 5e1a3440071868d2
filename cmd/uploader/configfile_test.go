package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseFlatConfig(t *testing.T) {
	tests := []struct {
		name string
		sep  byte
		in   string
		want map[string]string
		err  string
	}{
		{"yaml", ':', "# site 42\n---\nbroker: mqtt.example.org:1883   # the broker\napn: \"nb.iot\"\nusername: 'site # 42'\nkeepalive: 120\nempty:\n",
			map[string]string{"broker": "mqtt.example.org:1883", "apn": "nb.iot", "username": "site # 42", "keepalive": "120", "empty": ""}, ""},
		{"yaml escapes", ':', `password: "a\"b\\c"` + "\n", map[string]string{"password": `a"b\c`}, ""},
		{"yaml crlf and bom", ':', "\ufeffbaud: 57600\r\nschedule: \"@hourly\"\r\n", map[string]string{"baud": "57600", "schedule": "@hourly"}, ""},
		{"toml", '=', "broker = \"h:1883\"\nbaud = 115_200\ntls = true\njitter = '10m' # comment\n", map[string]string{"broker": "h:1883", "baud": "115200", "tls": "true", "jitter": "10m"}, ""},
		{"indented", ':', "broker: h:1\n  nested: x\n", nil, "line 2: indented"},
		{"no separator", ':', "broker\n", nil, "line 1"},
		{"no space after colon", ':', "broker:h:1\n", nil, "space after the colon"},
		{"list", ':', "bands: [1, 2]\n", nil, "single values"},
		{"duplicate", ':', "apn: a\napn: b\n", nil, "already set on line 1"},
		{"bad key", ':', "Broker Host: x\n", nil, "bad key"},
		{"unterminated", ':', "apn: \"abc\n", nil, "unterminated"},
		{"junk after quote", ':', "apn: \"abc\" x\n", nil, "after the value"},
		{"toml table", '=', "[mqtt]\nbroker = \"h:1\"\n", nil, "tables"},
		{"toml bare string", '=', "broker = h:1\n", nil, "must be quoted"},
		{"toml no value", '=', "broker =\n", nil, "no value"},
		{"not utf-8", ':', "apn: \xff\n", nil, "UTF-8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseFlatConfig([]byte(tt.in), tt.sep)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) || !errors.Is(err, errConfigSyntax) {
					t.Fatalf("err = %v, want one naming %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			m := map[string]string{}
			for _, e := range got {
				m[e.key] = e.value
			}
			if len(m) != len(tt.want) {
				t.Fatalf("got %v, want %v", m, tt.want)
			}
			for k, v := range tt.want {
				if m[k] != v {
					t.Errorf("%s = %q, want %q", k, m[k], v)
				}
			}
		})
	}
}

// A typo in the file is an error naming it; another command's key is not.
func TestConfigFileKeys(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	shared := write("shared.yaml", "db: "+filepath.Join(dir, "q.db")+"\nbroker: h:1883\nschedule: \"@hourly\"\napn: iot\nmax-payload: 4\n")
	code, _, stderr := runApp(t, "", "enqueue", "--config", shared, "--topic", "a", "toolong")
	if code != 2 || !strings.Contains(stderr, "over --max-payload 4") {
		t.Errorf("enqueue with a shared config: exit %d %q", code, stderr)
	}
	code, _, stderr = runApp(t, "", "enqueue", "--config", shared, "--topic", "a", "ok")
	if code != 0 {
		t.Errorf("enqueue with a shared config: exit %d %q", code, stderr)
	}
	typo := write("typo.yaml", "brokr: h:1883\n")
	code, _, stderr = runApp(t, "", "flush", "--config", typo)
	if code != 2 || !strings.Contains(stderr, `line 1: unknown key "brokr"`) {
		t.Errorf("typo: exit %d %q", code, stderr)
	}
	badValue := write("bad.yaml", "baud: fast\n")
	code, _, stderr = runApp(t, "", "flush", "--config", badValue)
	if code != 2 || !strings.Contains(stderr, "line 1: baud") {
		t.Errorf("bad value: exit %d %q", code, stderr)
	}
}

func FuzzParseFlatConfig(f *testing.F) {
	for _, s := range []string{"broker: h:1\n", "a = \"x\\ty\"\n", "k: 'v' # c\n", "---\n# c\nx: [1]\n", "[t]\n", "k: \"\\q\"\n"} {
		f.Add([]byte(s), true)
		f.Add([]byte(s), false)
	}
	f.Fuzz(func(t *testing.T, data []byte, yaml bool) {
		sep := byte('=')
		if yaml {
			sep = ':'
		}
		entries, err := parseFlatConfig(data, sep)
		if err != nil {
			if !errors.Is(err, errConfigSyntax) {
				t.Fatalf("error %v does not wrap errConfigSyntax", err)
			}
			return
		}
		seen := map[string]bool{}
		for _, e := range entries {
			if !validKey(e.key) || seen[e.key] {
				t.Fatalf("bad or duplicate key %q accepted", e.key)
			}
			seen[e.key] = true
		}
	})
}
