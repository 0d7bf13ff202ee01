package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	pb "github.com/vigilml/vigil/sdk/proto/vigil/plugin/v1"
)

// TestColumnRequestNumbersOutOfRange: a number too large for a float64
// (1e400, which numpy and pandas read as inf) is a non-finite number in a
// numeric column, an error naming the file and line, not a category that
// silently turns the whole column categorical; one too small to represent
// reads as 0, as there.
func TestColumnRequestNumbersOutOfRange(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) *csvFile { return writeCSV(t, dir, name, body) }
	cur := write("cur.csv", "x\n1\n2\n4\n")
	for _, tc := range []struct {
		cell, wantErr string
	}{
		{"1e400", `ref.csv:4: column "x": "1e400" is not a finite number`},
		{"-1e400", `ref.csv:4: column "x": "-1e400" is not a finite number`},
		{"NaN", `ref.csv:4: column "x": "NaN" is not a finite number`},
		{"1e-400", ""},
	} {
		ref := write("ref.csv", "x\n1\n2\n"+tc.cell+"\n")
		req, _, err := columnRequest("x", ref, cur)
		if tc.wantErr != "" {
			if err == nil || !strings.HasSuffix(err.Error(), tc.wantErr) {
				t.Errorf("%s: error %v; want one ending %q", tc.cell, err, tc.wantErr)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", tc.cell, err)
		}
		if req.DataType != pb.DataType_NUMERIC || len(req.ReferenceNumeric) != 3 || req.ReferenceNumeric[2] != 0 {
			t.Errorf("%s: data type %v, reference %v; want numeric [1 2 0]", tc.cell, req.DataType, req.ReferenceNumeric)
		}
	}
}

// TestColumnRequestWarnsOfTextInNumbers: a column of numbers with one
// missing-value marker ("NA") is categorical, as documented, and the
// command says so, naming the cell; a column that is mostly categories
// (with a few numeric codes) and a numeric one get no warning.
func TestColumnRequestWarnsOfTextInNumbers(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) *csvFile { return writeCSV(t, dir, name, body) }
	for _, tc := range []struct {
		ref, cur, want string
	}{
		{"x\n1.5\n2\n3\n", "x\n1\nNA\n4\n", `column "x" is categorical (every value a category) because cur.csv:3 holds "NA", not a number, though 5 of its 6 values are numbers; if such cells are missing values, leave them empty`},
		{"x\nS\nM\n10\n", "x\nL\nM\n", ""},
		{"x\n1\n2\n", "x\n3\n\n4\n", ""},
	} {
		req, warning, err := columnRequest("x", write("ref.csv", tc.ref), write("cur.csv", tc.cur))
		if err != nil {
			t.Fatal(err)
		}
		if warning = strings.ReplaceAll(warning, dir+"/", ""); warning != tc.want {
			t.Errorf("%q / %q: warning %q; want %q", tc.ref, tc.cur, warning, tc.want)
		}
		if tc.want != "" && req.DataType != pb.DataType_CATEGORICAL {
			t.Errorf("%q / %q: data type %v; want categorical", tc.ref, tc.cur, req.DataType)
		}
	}
}

// writeCSV writes body as dir/name and reads it as the command does.
func writeCSV(t *testing.T, dir, name, body string) *csvFile {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := readCSV(p)
	if err != nil {
		t.Fatal(err)
	}
	return f
}
