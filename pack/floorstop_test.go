package pack

import (
	"context"
	"errors"
	"testing"
)

// TestFloorStop: a floor stops (its write fails, its context is
// cancelled) once it has written as many bytes as the finished tar
// patch, whether it gets there before or after the tar patch is done;
// below that, or before the size is known, it runs on.
func TestFloorStop(t *testing.T) {
	for _, tc := range []struct {
		name         string
		before, size int64 // written before the tar patch is done; its size
		after        int64 // written after
		lost         bool
	}{
		{"smaller floor", 100, 500, 300, false},
		{"reaches it later", 100, 500, 400, true},
		{"past it already", 600, 500, 0, true},
		{"equal is lost (ties keep the tar patch)", 500, 500, 0, true},
	} {
		ctx, cancel := context.WithCancel(context.Background())
		s := &floorStop{cancel: cancel}
		if _, err := s.Write(make([]byte, tc.before)); err != nil {
			t.Fatalf("%s: a write before the tar patch is done failed: %v", tc.name, err)
		}
		s.at(tc.size)
		_, err := s.Write(make([]byte, tc.after))
		if tc.after > 0 && errors.Is(err, errFloorLost) != tc.lost {
			t.Fatalf("%s: write after: %v", tc.name, err)
		}
		if s.lost() != tc.lost || (ctx.Err() != nil) != tc.lost {
			t.Fatalf("%s: lost %v, context %v; want lost %v", tc.name, s.lost(), ctx.Err(), tc.lost)
		}
		cancel()
	}
}
