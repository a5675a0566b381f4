package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// ptyLog collects what is drawn on a pseudo-terminal.
type ptyLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (p *ptyLog) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.buf.Write(b)
}

// take waits briefly for the terminal to deliver what was written, then
// returns it and starts afresh.
func (p *ptyLog) take() string {
	time.Sleep(100 * time.Millisecond)
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.buf.String()
	p.buf.Reset()
	return s
}

func drain(t *testing.T) (*os.File, *ptyLog) {
	master, tty := openPTY(t)
	log := &ptyLog{}
	go func() {
		b := make([]byte, 4096)
		for {
			n, err := master.Read(b)
			log.Write(b[:n])
			if err != nil {
				return
			}
		}
	}()
	return tty, log
}

// TestProgressOnTerminal: pack, unpack, resolve and a registry push
// draw a progress line (bytes, rate) on stderr when it is a terminal;
// stdout never gets any; --quiet and a non-terminal stderr get none.
func TestProgressOnTerminal(t *testing.T) {
	fx := fixtures(t)
	tty, log := drain(t)
	work := t.TempDir()
	var plan bytes.Buffer
	if code := run([]string{"plan", "--name", "app", "--target", "oci:" + fx + "/v2", "--baseline", "oci:" + fx + "/v1"}, strings.NewReader(""), &plan, os.Stderr); code != 0 {
		t.Fatal("plan")
	}
	planFile := filepath.Join(work, "p.json")
	os.WriteFile(planFile, plan.Bytes(), 0o644)
	log.take()

	var stdout bytes.Buffer
	delta := filepath.Join(work, "d.dlt")
	if code := run([]string{"pack", "-o", delta, planFile}, strings.NewReader(""), &stdout, tty); code != 0 {
		t.Fatalf("pack: exit %d: %s", code, log.take())
	}
	drawn := func(what, label string) {
		t.Helper()
		got := log.take()
		if !strings.Contains(got, "\r\033[K") || !strings.Contains(got, label) || !strings.Contains(got, "/s") {
			t.Errorf("%s on a terminal drew no progress line with %q: %q", what, label, got)
		}
	}
	drawn("pack", "pack")
	if stdout.Len() != 0 {
		t.Errorf("pack -o FILE wrote %d bytes to stdout", stdout.Len())
	}

	lay := filepath.Join(work, "lay")
	if code := run([]string{"unpack", "-o", lay, delta}, strings.NewReader(""), &stdout, tty); code != 0 {
		t.Fatalf("unpack: exit %d", code)
	}
	drawn("unpack", "unpack")
	if code := run([]string{"resolve", "--baseline", "oci:" + fx + "/v1", lay}, strings.NewReader(""), &stdout, tty); code != 0 {
		t.Fatalf("resolve: exit %d", code)
	}
	drawn("resolve", "resolve")

	p := newProxy(t)
	ref := "docker://" + p.host() + "/app:2"
	if code := run([]string{"import", "--baseline", "oci:" + fx + "/v1", "-o", ref, delta}, strings.NewReader(""), &stdout, tty); code != 0 {
		t.Fatalf("import: exit %d: %s", code, log.take())
	}
	drawn("import to a registry", "push "+ref)
	if stdout.Len() != 0 {
		t.Errorf("progress or reports reached stdout: %q", stdout.String())
	}

	// --quiet: nothing on the terminal, not even the report.
	if code := run([]string{"-q", "import", "--baseline", "oci:" + fx + "/v1", "-o", "docker://" + p.host() + "/app:3", delta}, strings.NewReader(""), &stdout, tty); code != 0 {
		t.Fatalf("import -q: exit %d", code)
	}
	if got := log.take(); got != "" {
		t.Errorf("--quiet drew on the terminal: %q", got)
	}

	// stderr not a terminal: no progress control sequences at all.
	var errb bytes.Buffer
	if code := run([]string{"import", "--baseline", "oci:" + fx + "/v1", "-o", "docker://" + p.host() + "/app:4", delta}, strings.NewReader(""), &stdout, &errb); code != 0 {
		t.Fatalf("import: exit %d: %s", code, errb.String())
	}
	if strings.Contains(errb.String(), "\r") || strings.Contains(errb.String(), "\033[") {
		t.Errorf("progress drawn on a non-terminal stderr: %q", errb.String())
	}
	if !strings.Contains(errb.String(), "OK") {
		t.Errorf("no per-image report on stderr: %q", errb.String())
	}
}
