// Package deliver runs diffah's two-step commands end to end, as a
// library: export (plan, then pack into a file, stdout or a registry) and
// import (unpack into a private work directory, resolve against the
// baselines, write the rebuilt images to their outputs). cmd/diffah
// parses flags and prints; the orchestration — work directories, which
// layers a registry push may mount, image names, where an archive comes
// from and goes to — lives here.
package deliver

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/diffah/diffah/artifact"
	"github.com/diffah/diffah/fault"
	"github.com/diffah/diffah/imgref"
	"github.com/diffah/diffah/internal/atomicdir"
)

// OpenArchive opens an archive from a file, stdin ("" or "-"), or a
// registry artifact (docker://REF).
func OpenArchive(ctx context.Context, path string, stdin io.Reader, o imgref.Options) (io.Reader, func(), error) {
	ref, remote, err := imgref.ParseRegistry(path)
	if err != nil {
		return nil, nil, err
	}
	if remote {
		rc, _, err := artifact.Pull(ctx, ref, o)
		if err != nil {
			return nil, nil, err
		}
		return rc, func() { rc.Close() }, nil
	}
	if path == "" || path == "-" {
		return stdin, func() {}, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, fault.WithHint(fault.Errorf(fault.Env, "reading the archive: %w", err), fault.Env,
			"check the file name; with no DELTA argument (or -) the archive is read from stdin")
	}
	return f, func() { f.Close() }, nil
}

// NameInput prefixes an error met while reading an archive pulled from a
// registry with its reference, when the error (a parser's, who only saw a
// stream) does not already name it.
func NameInput(path string, err error) error {
	ref, remote, _ := imgref.ParseRegistry(path)
	if err == nil || !remote || strings.Contains(err.Error(), ref.Path) {
		return err
	}
	return fmt.Errorf("%s: %w", path, err)
}

// WriteArchive runs write against out: a registry artifact (docker://REF,
// pushed as the stream is written), or a file written through a temporary
// one renamed at the end, so a failed run leaves no partial file. The
// caller holds out's lock. pushed is set for a registry output.
func WriteArchive(ctx context.Context, out string, o imgref.Options, write func(io.Writer) error) (pushed *artifact.Pushed, err error) {
	ref, remote, err := imgref.ParseRegistry(out)
	if err != nil {
		return nil, fmt.Errorf("-o: %w", err)
	}
	if remote {
		return pushArchive(ctx, ref, o, write)
	}
	return nil, WriteFile(out, write)
}

// WriteFile runs write against a temporary file beside path, renamed to
// path once write succeeded.
func WriteFile(path string, write func(io.Writer) error) error {
	f, err := atomicdir.NewFile(path)
	if err != nil {
		return err
	}
	defer f.Abort()
	if err := write(f); err != nil {
		return err
	}
	return f.Commit()
}

// pushArchive packs into a pipe and pushes the stream as an OCI artifact.
func pushArchive(ctx context.Context, ref imgref.Ref, o imgref.Options, write func(io.Writer) error) (*artifact.Pushed, error) {
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		var err error
		defer func() {
			pw.CloseWithError(err)
			done <- err
		}()
		defer fault.Recover(&err)
		err = write(pw)
	}()
	pushed, perr := artifact.Push(ctx, ref, pr, o)
	pr.CloseWithError(perr)
	if err := <-done; err != nil {
		return nil, err
	}
	if perr != nil {
		return nil, fmt.Errorf("-o %s: %w", ref.String(), perr)
	}
	return &pushed, nil
}
