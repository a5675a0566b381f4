package resolve

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"strings"
)

// WriteJSON writes the report as indented JSON (resolve/import --json).
func (r *Report) WriteJSON(w io.Writer) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// LogJSON writes one JSON log record per image on w, at info (resolved),
// warn (skipped) or error (failed), whatever the log level: the report is
// the outcome, not a log line.
func (r *Report) LogJSON(w io.Writer) {
	rl := slog.New(slog.NewJSONHandler(w, nil))
	for _, im := range r.Images {
		level := slog.LevelInfo
		switch im.Status {
		case StatusSkipped:
			level = slog.LevelWarn
		case StatusFailed:
			level = slog.LevelError
		}
		rl.Log(context.Background(), level, "image "+im.Status, "image", im.Name, "status", im.Status, "manifest", im.ManifestDigest.String(),
			"shipped", im.Shipped, "reused", im.Reused, "patched", im.Patched, "reason", im.Reason)
	}
}

// WriteText writes one line per image for people: its status, name and
// manifest digest, then what was shipped, reused and patched, or why it
// was not resolved (the first line of the reason).
func (r *Report) WriteText(w io.Writer) {
	for _, im := range r.Images {
		line := fmt.Sprintf("%-8s %s %s", strings.ToUpper(im.Status), im.Name, im.ManifestDigest)
		if im.Status == StatusOK && im.Reason != "" {
			line += " (" + im.Reason + ")"
		} else if im.Status == StatusOK {
			line += fmt.Sprintf(" (%d shipped, %d reused, %d patched)", im.Shipped, im.Reused, im.Patched)
		} else if im.Reason != "" {
			first, _, _ := strings.Cut(im.Reason, "\n")
			line += ": " + first
		}
		fmt.Fprintln(w, line)
	}
}
