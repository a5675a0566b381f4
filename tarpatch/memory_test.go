package tarpatch

import (
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"strconv"
	"testing"
)

// TestEncodeMemoryBounded measures (GNU time, in a child process) the peak
// RSS of encoding a rebuilt 26 MiB binary — chunked, so every chunk goes
// through MATCH, DELTA and ADIFF — with the default jobs and the heap
// limit diffah runs with: it must stay under 512 MiB, the bound the
// benchmark checks on its 1 GiB pair.
func TestEncodeMemoryBounded(t *testing.T) {
	if dir := os.Getenv("DIFFAH_TARPATCH_MEMCHILD"); dir != "" {
		encodeFiles(t, dir)
		return
	}
	if testing.Short() {
		t.Skip("slow: measures a 26 MiB encode")
	}
	if _, err := os.Stat("/usr/bin/time"); err != nil {
		t.Skip("GNU time not installed (scripts/deps.sh)")
	}
	dir := t.TempDir()
	code := fakeCode(60, 26<<20)
	old := mktar(t, []entry{{name: "usr/bin/big", body: code}}, nil)
	nw := mktar(t, []entry{{name: "usr/bin/big", body: relink(code, 61, 0x100)}}, nil)
	for name, b := range map[string][]byte{"old.tar": old, "new.tar": nw} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command("/usr/bin/time", "-v", os.Args[0], "-test.run=^TestEncodeMemoryBounded$", "-test.count=1")
	cmd.Env = append(os.Environ(), "DIFFAH_TARPATCH_MEMCHILD="+dir)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	m := regexp.MustCompile(`Maximum resident set size \(kbytes\): (\d+)`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("no RSS in\n%s", out)
	}
	kb, _ := strconv.Atoi(string(m[1]))
	t.Logf("peak RSS %d MiB encoding a 26 MiB rebuilt binary", kb>>10)
	if kb>>10 >= 512 {
		t.Fatalf("peak RSS %d MiB, want < 512", kb>>10)
	}
}

func encodeFiles(t *testing.T, dir string) {
	debug.SetMemoryLimit(384 << 20) // as cmd/diffah runs
	old, err := os.Open(filepath.Join(dir, "old.tar"))
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	nw, err := os.Open(filepath.Join(dir, "new.tar"))
	if err != nil {
		t.Fatal(err)
	}
	defer nw.Close()
	st, err := Encode(context.Background(), io.Discard, nw, []Source{fileSource{old}}, EncodeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if st.ADiffs == 0 {
		t.Fatalf("no ADIFF chunk (stats %+v): the measurement would not cover it", st)
	}
}
