package units

import "testing"

func TestParseBytes(t *testing.T) {
	tests := []struct {
		in      string
		want    Bytes
		wantErr bool
	}{
		{"4096", 4096, false},
		{"8MiB", 8 << 20, false},
		{"8 MiB", 8 << 20, false},
		{"1GiB", 1 << 30, false},
		{"1.5GB", 1_500_000_000, false},
		{"512kb", 512_000, false},
		{"10B", 10, false},
		{"2g", 2 << 30, false},
		{"", 0, true},
		{"-1MiB", 0, true},
		{"lots", 0, true},
		{"NaN", 0, true},
		{"1e30TiB", 0, true},
	}
	for _, tt := range tests {
		got, err := ParseBytes(tt.in)
		if (err != nil) != tt.wantErr {
			t.Errorf("ParseBytes(%q) error = %v, wantErr %v", tt.in, err, tt.wantErr)
			continue
		}
		if got != tt.want {
			t.Errorf("ParseBytes(%q) = %d, want %d", tt.in, got, tt.want)
		}
	}
}

func TestBytesString(t *testing.T) {
	for b, want := range map[Bytes]string{8 << 20: "8MiB", 1 << 30: "1GiB", 1000: "1000B", 0: "0B", 3 << 10: "3KiB"} {
		if got := b.String(); got != want {
			t.Errorf("Bytes(%d).String() = %q, want %q", int64(b), got, want)
		}
	}
}
