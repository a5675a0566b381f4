package pack

import "sync/atomic"

// SetFloorBesideMax sets floorBesideMax and counts the floors started
// until the returned restore is called.
func SetFloorBesideMax(n int64) (floors *atomic.Int32, restore func()) {
	old := floorBesideMax
	floorBesideMax = n
	floors = &atomic.Int32{}
	floorStarted = func() { floors.Add(1) }
	return floors, func() { floorBesideMax, floorStarted = old, nil }
}
