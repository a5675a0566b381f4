package cleanup

import (
	"errors"
	"testing"
)

func TestRunOrderDropCommit(t *testing.T) {
	var got []string
	a := Add(func() { got = append(got, "a") })
	b := Add(func() { got = append(got, "b") })
	c := Add(func() { got = append(got, "c") })
	b.Drop()
	if err := c.Commit(func() error { return errors.New("rename failed") }); err == nil {
		t.Fatal("Commit swallowed fn's error")
	}
	d := Add(func() { got = append(got, "d") })
	if err := d.Commit(func() error { return nil }); err != nil {
		t.Fatal(err)
	}
	_ = a
	Run()
	if len(got) != 2 || got[0] != "c" || got[1] != "a" {
		t.Fatalf("ran %v, want [c a] (newest first; dropped and committed ones skipped)", got)
	}
	if Len() != 0 {
		t.Fatalf("%d entries left after Run", Len())
	}
	Run()
	if len(got) != 2 {
		t.Fatal("Run ran an action twice")
	}
}
