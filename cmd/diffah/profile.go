//go:build profile

package main

import (
	"os"
	"runtime/pprof"
	"runtime/trace"
)

// A binary built with -tags profile writes a CPU profile to
// $DIFFAH_CPUPROFILE and an execution trace to $DIFFAH_TRACE, for
// finding what stays serial (`go tool pprof`, `go tool trace`). Release
// builds have neither.
func init() {
	if p := os.Getenv("DIFFAH_CPUPROFILE"); p != "" {
		f, err := os.Create(p)
		if err == nil && pprof.StartCPUProfile(f) == nil {
			stopProfile = append(stopProfile, func() { pprof.StopCPUProfile(); f.Close() })
		}
	}
	if p := os.Getenv("DIFFAH_TRACE"); p != "" {
		f, err := os.Create(p)
		if err == nil && trace.Start(f) == nil {
			stopProfile = append(stopProfile, func() { trace.Stop(); f.Close() })
		}
	}
}
