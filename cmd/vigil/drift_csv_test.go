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
	write := func(name, body string) *csvFile {
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
		req, err := columnRequest("x", ref, cur)
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
