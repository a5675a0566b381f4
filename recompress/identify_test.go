package recompress

import (
	"bytes"
	"os/exec"
	"strings"
	"testing"
)

// TestIdentify runs the real compressors that are installed (scripts/
// deps.sh installs them) and checks the family Identify names.
func TestIdentify(t *testing.T) {
	var plain bytes.Buffer
	for i := range 20000 {
		plain.WriteString(strings.Repeat("line of text ", i%7+1) + "\n")
	}
	// Enough for several pigz blocks (128 KiB of input each).
	data := bytes.Repeat(plain.Bytes(), 2)
	py := func(code string) []string {
		return []string{"python3", "-c", "import gzip,zlib,sys;d=sys.stdin.buffer.read();" + code}
	}
	cases := []struct {
		argv []string
		want string
	}{
		{[]string{"gzip", "-6", "-c"}, "GNU gzip"},
		{[]string{"gzip", "-9", "-c"}, "best level"},
		{[]string{"gzip", "-1", "-c"}, "fastest level"},
		{[]string{"gzip", "-n", "-6", "-c"}, "GNU gzip -n, zlib"},
		{[]string{"pigz", "-6", "-c"}, "pigz"},
		{[]string{"pigz", "-p", "1", "-6", "-c"}, "pigz"},
		{[]string{"libdeflate-gzip", "-12", "-c"}, "libdeflate-gzip"},
		{py("sys.stdout.buffer.write(gzip.compress(d,6))"), "Python's gzip module"},
		{py("c=zlib.compressobj(9,zlib.DEFLATED,31);sys.stdout.buffer.write(c.compress(d)+c.flush())"), "zlib (gzip wrapper)"},
		{py("sys.stdout.buffer.write(gzip.compress(d[:1000])+gzip.compress(d[1000:]))"), "2 gzip members"},
		{[]string{"zstd", "-q", "-3", "-c"}, "zstd not made by klauspost"},
	}
	for _, c := range cases {
		t.Run(strings.Join(c.argv, " "), func(t *testing.T) {
			if _, err := exec.LookPath(c.argv[0]); err != nil {
				t.Skipf("%s not installed", c.argv[0])
			}
			cmd := exec.Command(c.argv[0], c.argv[1:]...)
			cmd.Stdin = bytes.NewReader(data)
			blob, err := cmd.Output()
			if err != nil {
				t.Fatal(err)
			}
			if got := Identify(bytes.NewReader(blob)); !strings.Contains(got, c.want) {
				t.Fatalf("Identify = %q, want it to mention %q", got, c.want)
			}
		})
	}
	if got := Identify(bytes.NewReader([]byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 1, 2})); !strings.Contains(got, "unknown deflate") {
		t.Fatalf("corrupt stream: %q", got)
	}
	if got := Identify(bytes.NewReader(data)); got != "uncompressed" {
		t.Fatalf("plain data: %q", got)
	}
}
