package peakrss

import (
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestMain lets the test binary be the child: PEAKRSS_ALLOC=N makes it
// touch N MiB and exit.
func TestMain(m *testing.M) {
	if s := os.Getenv("PEAKRSS_ALLOC"); s != "" {
		n, _ := strconv.Atoi(s)
		b := make([]byte, n<<20)
		for i := range b {
			b[i] = byte(i)
		}
		os.Stderr.WriteString("child done\n")
		if b[len(b)-1] == 7 {
			os.Exit(3)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestRunMeasures: a child that touches 200 MiB peaks above 200 MiB, one
// that touches 1 MiB well below; the child's own stderr comes through
// without GNU time's report.
func TestRunMeasures(t *testing.T) {
	if !Available() {
		t.Skip(Time + " not installed (make deps)")
	}
	run := func(mib int) (int64, string) {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), "PEAKRSS_ALLOC="+strconv.Itoa(mib))
		var stderr strings.Builder
		cmd.Stderr = &stderr
		rss, err := Run(cmd)
		if err != nil {
			t.Fatalf("alloc %d MiB: %v", mib, err)
		}
		return rss, stderr.String()
	}
	big, out := run(200)
	if big < 200<<20 {
		t.Fatalf("200 MiB child: peak %d bytes", big)
	}
	if out != "child done\n" {
		t.Fatalf("child stderr = %q", out)
	}
	small, _ := run(1)
	if small >= 100<<20 {
		t.Fatalf("1 MiB child: peak %d bytes", small)
	}
}

// TestRunUsageCountsChildCPU: the CPU time of the child under time is
// reported (touching 300 MiB takes some), and never more than the wall
// time times the cores.
func TestRunUsageCountsChildCPU(t *testing.T) {
	if !Available() {
		t.Skip(Time + " not installed (make deps)")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "PEAKRSS_ALLOC=300")
	u, err := RunUsage(cmd)
	if err != nil {
		t.Fatal(err)
	}
	if u.User+u.Sys <= 0 || u.Wall <= 0 || u.RSS < 300<<20 {
		t.Fatalf("usage %+v", u)
	}
	if u.User+u.Sys > u.Wall*time.Duration(runtime.NumCPU()+1) {
		t.Fatalf("CPU %v in %v wall on %d cores", u.User+u.Sys, u.Wall, runtime.NumCPU())
	}
}
