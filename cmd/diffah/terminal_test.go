package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/diffah/diffah/fault"
)

// openPTY returns the two ends of a pseudo-terminal.
func openPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	m, s, err := newPTY()
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	t.Cleanup(func() { s.Close(); m.Close() })
	return m, s
}

// newPTY opens a pseudo-terminal: its master and slave ends.
func newPTY() (master, slave *os.File, err error) {
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR, 0)
	if err != nil {
		return nil, nil, err
	}
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		m.Close()
		return nil, nil, fmt.Errorf("unlockpt: %w", err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		m.Close()
		return nil, nil, fmt.Errorf("ptsname: %w", err)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		m.Close()
		return nil, nil, fmt.Errorf("open pts: %w", err)
	}
	return m, s, nil
}

// TestRefusesTerminal: binary output is refused when stdout is a terminal,
// and reading an archive from a terminal is refused too.
func TestRefusesTerminal(t *testing.T) {
	fx := fixtures(t)
	master, tty := openPTY(t)
	// Drain the terminal so output to it never blocks.
	go io.Copy(io.Discard, master)
	work := t.TempDir()
	var errb bytes.Buffer
	code := run([]string{"export", "--target", "oci:" + fx + "/v2", "--baseline", "oci:" + fx + "/v1", "-o", "-"}, strings.NewReader(""), tty, &errb)
	if code != int(fault.Usage) || !strings.Contains(errb.String(), "terminal") || !strings.Contains(errb.String(), "hint:") {
		t.Fatalf("export to a terminal: exit %d, %q", code, errb.String())
	}
	plan := filepath.Join(work, "p.json")
	var out bytes.Buffer
	if code := run([]string{"plan", "--target", "oci:" + fx + "/v2", "--baseline", "oci:" + fx + "/v1"}, strings.NewReader(""), &out, &errb); code != 0 {
		t.Fatal(errb.String())
	}
	os.WriteFile(plan, out.Bytes(), 0o644)
	errb.Reset()
	if code := run([]string{"pack", plan}, strings.NewReader(""), tty, &errb); code != int(fault.Usage) || !strings.Contains(errb.String(), "terminal") {
		t.Fatalf("pack to a terminal: exit %d, %q", code, errb.String())
	}
	// A plan may go to a terminal: it is text.
	errb.Reset()
	if code := run([]string{"plan", "--target", "oci:" + fx + "/v2", "--baseline", "oci:" + fx + "/v1"}, strings.NewReader(""), tty, &errb); code != 0 {
		t.Fatalf("plan to a terminal: exit %d, %q", code, errb.String())
	}
	errb.Reset()
	if code := run([]string{"unpack", "-o", filepath.Join(work, "x")}, tty, &out, &errb); code != int(fault.Usage) || !strings.Contains(errb.String(), "terminal") {
		t.Fatalf("unpack from a terminal: exit %d, %q", code, errb.String())
	}
}
