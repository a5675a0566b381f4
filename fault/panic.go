package fault

import "fmt"

// PanicError is a panic caught and turned into an error: always a bug in
// diffah. Stack is where it happened, shown only when debugging.
type PanicError struct {
	Value any
	Stack []byte
}

func (p *PanicError) Error() string {
	return fmt.Sprintf("internal error: %v; please report this bug with the command line and the output of `diffah version`", p.Value)
}

// Panic turns the value of recover() (and the stack, from
// runtime/debug.Stack) into an Internal error, so that a panic in any
// goroutine reaches the top as exit 70 instead of killing the process.
func Panic(r any, stack []byte) error {
	return WithHint(&PanicError{Value: r, Stack: stack}, Internal, "rerun with --log-level debug for a stack trace")
}
