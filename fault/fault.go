// Package fault holds diffah's error categories. An error is tagged with its
// category where it is created; cmd/diffah maps the category to an exit code
// once, at the top. The table of codes is documented in README.md.
package fault

import (
	"errors"
	"fmt"
)

// Kind is an error category. Its value is the process exit code.
type Kind int

const (
	// Different is not a failure: diff found the images differ (like diff(1)).
	Different Kind = 1
	// Usage: bad flags, arguments or image references.
	Usage Kind = 2
	// Env: something outside diffah: file or image not found, permission,
	// authentication, network, disk full.
	Env Kind = 3
	// Integrity: the content is wrong: digest or size mismatch, corrupt or
	// truncated archive, unknown format version, missing baseline blob,
	// hostile input.
	Integrity Kind = 4
	// Signature: the archive is unsigned, signed by another key, or its
	// signature does not verify.
	Signature Kind = 5
	// Partial: a bundle was resolved only in part (some images skipped).
	Partial Kind = 6
	// Internal: a bug in diffah.
	Internal Kind = 70
)

func (k Kind) String() string {
	switch k {
	case Different:
		return "different"
	case Usage:
		return "usage"
	case Env:
		return "environment"
	case Integrity:
		return "integrity"
	case Signature:
		return "signature"
	case Partial:
		return "partial"
	case Internal:
		return "internal"
	}
	return fmt.Sprintf("kind(%d)", int(k))
}

// Error is an error tagged with a Kind and an optional hint telling the user
// what to do next.
type Error struct {
	Kind Kind
	Err  error
	Hint string
}

func (e *Error) Error() string { return e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// Errorf builds a tagged error; %w works as in fmt.Errorf.
func Errorf(k Kind, format string, args ...any) error {
	return &Error{Kind: k, Err: fmt.Errorf(format, args...)}
}

// Wrap tags err with k unless err is nil. An inner tag wins over the outer
// one, so the category is decided where the error is created.
func Wrap(k Kind, err error) error {
	if err == nil {
		return nil
	}
	return &Error{Kind: k, Err: err}
}

// WithHint attaches a one-line hint to err, keeping (or setting) its kind.
func WithHint(err error, k Kind, hint string) error {
	if err == nil {
		return nil
	}
	return &Error{Kind: KindOf(err, k), Err: err, Hint: hint}
}

// KindOf returns the innermost Kind attached to err, or def when none is.
func KindOf(err error, def Kind) Kind {
	kind := Kind(0)
	for e := err; e != nil; {
		var fe *Error
		if !errors.As(e, &fe) {
			break
		}
		kind = fe.Kind
		e = fe.Err
	}
	if kind == 0 {
		return def
	}
	return kind
}

// HintOf returns the outermost hint attached to err, or "".
func HintOf(err error) string {
	for e := err; e != nil; {
		var fe *Error
		if !errors.As(e, &fe) {
			return ""
		}
		if fe.Hint != "" {
			return fe.Hint
		}
		e = fe.Err
	}
	return ""
}
