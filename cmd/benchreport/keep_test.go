package main

import (
	"bytes"
	"testing"
)

func TestKeepSection(t *testing.T) {
	const section = "<!-- size: begin (go run ./.ci/size) -->\n\n## Board binary size\n\n| a | 1 |\n\n<!-- size: end -->"
	tests := []struct {
		name, old, report, want, wantErr string
	}{
		{name: "no old report", old: "", report: "# Report\n", want: "# Report\n"},
		{name: "old report without a section", old: "# Old\n", report: "# Report\n", want: "# Report\n"},
		{name: "section kept at the end", old: "# Old\n\n" + section + "\n", report: "# Report\n\nlast line\n", want: "# Report\n\nlast line\n\n" + section + "\n"},
		{name: "section in the middle", old: "# Old\n" + section + "\n## Raw\n", report: "# Report", want: "# Report\n\n" + section + "\n"},
		{name: "no end marker", old: "# Old\n<!-- size: begin -->\n| a |\n", report: "# Report\n", wantErr: "the size section has no end marker (<!-- size: end -->)"},
		{name: "marker inside a line", old: "# Old <!-- size: begin --> <!-- size: end -->\n", report: "# Report\n", wantErr: "the size section's begin marker is not at the start of a line"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := keepSection([]byte(tt.old), []byte(tt.report))
			switch {
			case tt.wantErr != "":
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
			case err != nil:
				t.Fatal(err)
			case string(got) != tt.want:
				t.Errorf("got\n%q\nwant\n%q", got, tt.want)
			}
		})
	}
}

// FuzzKeepSection: any old report either is refused or gives the new report
// followed by exactly the old section.
func FuzzKeepSection(f *testing.F) {
	f.Add([]byte("# Old\n<!-- size: begin -->\n| a |\n<!-- size: end -->\n"), []byte("# New\n"))
	f.Add([]byte("<!-- size: begin --><!-- size: end -->"), []byte(""))
	f.Add([]byte("x<!-- size: begin"), []byte("\n\n"))
	f.Fuzz(func(t *testing.T, old, report []byte) {
		got, err := keepSection(old, report)
		if err != nil {
			return
		}
		begin := bytes.Index(old, keptBegin)
		if begin < 0 {
			if !bytes.Equal(got, report) {
				t.Fatalf("no section, but the report changed: %q", got)
			}
			return
		}
		end := begin + bytes.Index(old[begin:], keptEnd) + len(keptEnd)
		if !bytes.HasSuffix(got, append(old[begin:end:end], '\n')) {
			t.Fatalf("%q does not end with the old section %q", got, old[begin:end])
		}
		if !bytes.HasPrefix(got, bytes.TrimRight(report, "\n")) {
			t.Fatalf("%q does not start with the new report", got)
		}
	})
}
