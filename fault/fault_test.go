package fault

import (
	"errors"
	"fmt"
	"testing"
)

// TestKindAndHint: the innermost kind wins (the category is decided where
// the error is created), the outermost hint wins (the caller knows best
// what to do), and nil stays nil.
func TestKindAndHint(t *testing.T) {
	inner := Errorf(Integrity, "blob x: content is wrong")
	outer := Wrap(Env, fmt.Errorf("reading: %w", inner))
	if k := KindOf(outer, Internal); k != Integrity {
		t.Fatalf("KindOf = %v, want integrity (the inner kind)", k)
	}
	if k := KindOf(errors.New("plain"), Env); k != Env {
		t.Fatalf("KindOf(untagged) = %v, want the default", k)
	}
	hinted := WithHint(WithHint(outer, Usage, "inner hint"), Usage, "outer hint")
	if h := HintOf(hinted); h != "outer hint" {
		t.Fatalf("HintOf = %q, want the outer hint", h)
	}
	if k := KindOf(hinted, 0); k != Integrity {
		t.Fatalf("WithHint changed the kind to %v", k)
	}
	if k := KindOf(WithHint(errors.New("plain"), Usage, "h"), 0); k != Usage {
		t.Fatalf("WithHint on an untagged error: kind %v, want usage", k)
	}
	if HintOf(inner) != "" || HintOf(nil) != "" {
		t.Fatal("a hint out of nowhere")
	}
	if Wrap(Env, nil) != nil || WithHint(nil, Env, "h") != nil {
		t.Fatal("nil error wrapped into non-nil")
	}
	if !errors.Is(outer, inner) {
		t.Fatal("Wrap broke errors.Is")
	}
	if Integrity.String() == "" || Kind(99).String() == "" {
		t.Fatal("a kind without a name")
	}
}
