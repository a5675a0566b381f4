package main

import (
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/rogpeppe/go-internal/testscript"
)

// pty LOG PROG ARGS...: run PROG with its stderr on a pseudo-terminal,
// stdin empty and stdout to the file LOG.stdout, and write everything the
// terminal showed (progress lines, summaries, their control sequences)
// to the file LOG. Progress and summaries are drawn only on a terminal,
// so this is how a script sees them; check LOG with grep.
func cmdPty(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) < 2 {
		ts.Fatalf("usage: pty LOG PROG ARGS...")
	}
	master, slave, err := newPTY()
	if err != nil {
		ts.Fatalf("no pseudo-terminal: %v", err)
	}
	defer master.Close()
	prog, err := lookPath(ts, args[1])
	ts.Check(err)
	out, err := os.Create(ts.MkAbs(args[0] + ".stdout"))
	ts.Check(err)
	defer out.Close()
	cmd := exec.Command(prog, args[2:]...)
	cmd.Dir = ts.MkAbs(".")
	cmd.Env = scriptEnv(ts)
	cmd.Stdout = out
	cmd.Stderr = slave
	if err := cmd.Start(); err != nil {
		slave.Close()
		ts.Fatalf("pty %s: %v", args[1], err)
	}
	// Only the child holds the slave now: the master reads until it exits.
	slave.Close()
	var shown bytes.Buffer
	copied := make(chan struct{})
	go func() {
		io.Copy(&shown, master) // ends with EIO once the child is gone
		close(copied)
	}()
	err = cmd.Wait()
	<-copied
	ts.Check(os.WriteFile(ts.MkAbs(args[0]), shown.Bytes(), 0o644))
	switch {
	case err != nil && !neg:
		ts.Fatalf("pty %s: %v\n%s", args[1], err, shown.String())
	case err == nil && neg:
		ts.Fatalf("pty %s: unexpected success", args[1])
	}
}

// lookPath finds prog in the script's PATH (where testscript puts the
// commands of TestMain).
func lookPath(ts *testscript.TestScript, prog string) (string, error) {
	for _, dir := range filepath.SplitList(ts.Getenv("PATH")) {
		p := filepath.Join(dir, prog)
		if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", errors.New(prog + ": not in the script's PATH")
}

// scriptEnv is the environment the script's exec would give: the
// script's own variables over the process's (the last value wins).
func scriptEnv(ts *testscript.TestScript) []string {
	env := os.Environ()
	for _, k := range []string{"PATH", "HOME", "TMPDIR", "WORK", "FIX", "ROOT"} {
		env = append(env, k+"="+ts.Getenv(k))
	}
	return env
}
