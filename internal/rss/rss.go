// Package rss measures the peak resident set size of a child process
// under GNU time (/usr/bin/time -v): the real measurement memory bounds
// are checked with in tests.
package rss

import (
	"errors"
	"os"
	"os/exec"
	"regexp"
	"strconv"
)

// ErrNoTime says GNU time is not installed (scripts/deps.sh installs it).
var ErrNoTime = errors.New("GNU time (/usr/bin/time) not installed")

var maxRSS = regexp.MustCompile(`Maximum resident set size \(kbytes\): (\d+)`)

// Peak runs argv with env added under GNU time and returns its peak RSS in
// KiB and its combined output.
func Peak(env []string, argv ...string) (int64, []byte, error) {
	if _, err := os.Stat("/usr/bin/time"); err != nil {
		return 0, nil, ErrNoTime
	}
	cmd := exec.Command("/usr/bin/time", append([]string{"-v"}, argv...)...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return 0, out, err
	}
	m := maxRSS.FindSubmatch(out)
	if m == nil {
		return 0, out, errors.New("no peak RSS in GNU time's output")
	}
	kb, err := strconv.ParseInt(string(m[1]), 10, 64)
	return kb, out, err
}
