//go:build profile

package main

import (
	"os"
	"runtime"
	"runtime/pprof"
	"runtime/trace"
	"time"
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

// $DIFFAH_HEAPPROFILE gets the heap profile at the largest live heap
// seen (sampled every second): where the peak's memory is held.
func init() {
	p := os.Getenv("DIFFAH_HEAPPROFILE")
	if p == "" {
		return
	}
	go func() {
		var peak uint64
		for range time.Tick(time.Second) {
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > peak+8<<20 {
				peak = ms.HeapInuse
				if f, err := os.Create(p); err == nil {
					pprof.WriteHeapProfile(f)
					f.Close()
				}
			}
		}
	}()
}
