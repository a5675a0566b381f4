package fault

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
)

// Report renders err once on w, with its hint, and returns its exit code:
// its kind, 130 for an interruption (context.Canceled), 70 for a panic
// turned into an error (Panic), its stack shown only with debug. An error
// of kind Different is not printed: it is diff's answer, not a failure.
// With jsonLog (--log-format json) it is one JSON record, like the logs,
// so that every line on w parses.
func Report(w io.Writer, err error, jsonLog, debug bool) int {
	kind := KindOf(err, Env)
	if kind == Different {
		return int(Different)
	}
	msg, code := err.Error(), int(kind)
	if errors.Is(err, context.Canceled) {
		msg, code = "interrupted; nothing was left half-written", 130
	}
	hint := HintOf(err)
	var stack []byte
	var pe *PanicError
	if errors.As(err, &pe) {
		code = int(Internal)
		if debug {
			stack, hint = pe.Stack, ""
		}
	}
	if code == 130 {
		hint = ""
	}
	if jsonLog {
		attrs := []any{"error", msg, "exit", code}
		if hint != "" {
			attrs = append(attrs, "hint", hint)
		}
		if stack != nil {
			attrs = append(attrs, "stack", string(stack))
		}
		slog.New(slog.NewJSONHandler(w, nil)).Error("diffah failed", attrs...)
		return code
	}
	fmt.Fprintf(w, "diffah: %s\n", msg)
	if hint != "" {
		fmt.Fprintf(w, "hint: %s\n", hint)
	}
	if stack != nil {
		w.Write(stack)
	}
	return code
}
