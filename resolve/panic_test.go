package resolve_test

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/diffah/diffah/fault"
	"github.com/diffah/diffah/resolve"
)

// panicImage is a baseline whose blobs panic when read, standing in for a
// bug below resolve's workers. Only reading panics: preflight checks that
// the baseline holds each blob without reading it, so the panic comes
// from a worker building the layout.
type panicImage struct{ v1.Image }

func (p panicImage) LayerByDigest(h v1.Hash) (v1.Layer, error) {
	l, err := p.Image.LayerByDigest(h)
	if err != nil {
		return nil, err
	}
	return panicLayer{l}, nil
}

type panicLayer struct{ v1.Layer }

func (l panicLayer) Compressed() (io.ReadCloser, error) {
	rc, err := l.Layer.Compressed()
	if err != nil {
		return nil, err
	}
	return panicReader{rc}, nil
}

type panicReader struct{ io.ReadCloser }

func (panicReader) Read([]byte) (int, error) { panic("boom in a worker") }

// TestWorkerPanicIsInternalError: a panic in a resolve worker goroutine
// comes back from Complete as an internal error (exit 70), the layout is
// left as it was and no temporary directory stays behind — instead of
// killing the process, which a recover in main cannot prevent.
func TestWorkerPanicIsInternalError(t *testing.T) {
	dir := unpacked(t, [3]string{"img", "v2", "v1"})
	before := snapshot(t, dir)
	base := baseline(t, "v1")
	base.Image = panicImage{base.Image}
	_, err := resolve.Complete(context.Background(), dir, map[string]resolve.Baseline{"": base}, resolve.Options{Jobs: 4})
	if fault.KindOf(err, 0) != fault.Internal || !strings.Contains(err.Error(), "internal error: boom in a worker") {
		t.Fatalf("err = %v (kind %v), want an internal error", err, fault.KindOf(err, 0))
	}
	if snapshot(t, dir) != before {
		t.Fatal("the layout changed")
	}
	ents, _ := os.ReadDir(filepath.Dir(dir))
	if len(ents) != 1 {
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		t.Fatalf("left beside the layout: %v", names)
	}
}
