// Package peakrss measures a child process's peak resident set size, for
// tests of memory bounds: a real measurement (GNU time's "Maximum
// resident set size", from the kernel's rusage), not an estimate.
package peakrss

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"time"
)

// Time is GNU time, which reports the peak RSS with -v.
const Time = "/usr/bin/time"

// Available reports whether Run can measure (GNU time is installed).
func Available() bool {
	_, err := os.Stat(Time)
	return err == nil
}

var rssLine = regexp.MustCompile(`Maximum resident set size \(kbytes\): (\d+)`)

// Run runs cmd (not yet started) under GNU time and returns its peak RSS
// in bytes, with cmd.Run's error. cmd's stderr receives the child's own
// stderr, without time's report.
func Run(cmd *exec.Cmd) (int64, error) {
	u, err := RunUsage(cmd)
	return u.RSS, err
}

// Usage is what a child used: its peak RSS in bytes, its CPU time (user
// and system, its own children's included) and the wall time it took.
type Usage struct {
	RSS             int64
	User, Sys, Wall time.Duration
}

// RunUsage is Run reporting the CPU and wall time too: on a loaded
// machine, (User+Sys)/Wall shows how much of the time the child ran.
func RunUsage(cmd *exec.Cmd) (Usage, error) {
	timed := exec.Command(Time, append([]string{"-v", cmd.Path}, cmd.Args[1:]...)...)
	timed.Dir, timed.Env, timed.Stdin, timed.Stdout = cmd.Dir, cmd.Env, cmd.Stdin, cmd.Stdout
	var errb bytes.Buffer
	timed.Stderr = &errb
	start := time.Now()
	runErr := timed.Run()
	var u Usage
	u.Wall = time.Since(start)
	if timed.ProcessState != nil {
		// wait4 counts the waited-for descendants: the child is time's.
		u.User, u.Sys = timed.ProcessState.UserTime(), timed.ProcessState.SystemTime()
	}
	out := errb.Bytes()
	m := rssLine.FindSubmatch(out)
	if m == nil {
		return u, errors.Join(runErr, fmt.Errorf("peakrss: no RSS in %s's output:\n%s", Time, out))
	}
	kb, _ := strconv.ParseInt(string(m[1]), 10, 64)
	if i := bytes.Index(out, []byte("\tCommand being timed")); i >= 0 {
		out = out[:i]
	}
	// time adds a line of its own when the child fails.
	out = regexp.MustCompile(`(?m)^Command (exited with non-zero status|terminated by signal) .*\n`).ReplaceAll(out, nil)
	if cmd.Stderr != nil {
		io.Copy(cmd.Stderr, bytes.NewReader(out))
	}
	u.RSS = kb << 10
	return u, runErr
}
