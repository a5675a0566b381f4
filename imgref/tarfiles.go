package imgref

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"

	"github.com/diffah/diffah/fault"
)

// maxTarEntries bounds the index of an archive; image archives hold a few
// files per layer.
const maxTarEntries = 1 << 16

// tarFiles indexes the regular files of an uncompressed tar by offset and
// serves each as a section of the open file, so archives are read in place:
// nothing is extracted and no layer is loaded into memory. Unsafe names
// (absolute, "..") and special files are rejected while indexing; symbolic
// links are only followed when allowed, and only to other members.
type tarFiles struct {
	ctx   context.Context
	f     *os.File
	ref   string
	files map[string]section
	links map[string]string
}

type section struct{ off, size int64 }

// openTarFiles indexes the archive file; reads of its members honour ctx.
func openTarFiles(ctx context.Context, file, ref string, allowLinks bool) (*tarFiles, error) {
	f, err := openRegular(file, ref)
	if err != nil {
		return nil, err
	}
	t, err := indexTar(ctx, f, ref, allowLinks)
	if err != nil {
		f.Close()
		return nil, err
	}
	t.ctx = ctx
	return t, nil
}

// indexTar reads the headers of f. f is read directly (tar skips file
// data by seeking), so ctx is checked between headers.
func indexTar(ctx context.Context, f *os.File, ref string, allowLinks bool) (*tarFiles, error) {
	st, err := f.Stat()
	if err != nil {
		return nil, fault.Errorf(fault.Env, "%s: %w", ref, err)
	}
	if !st.Mode().IsRegular() {
		return nil, fault.Errorf(fault.Usage, "%s: not a regular file", ref)
	}
	t := &tarFiles{f: f, ref: ref, files: map[string]section{}, links: map[string]string{}}
	tr := tar.NewReader(f)
	for n := 0; ; n++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fault.Errorf(fault.Integrity, "%s: reading the tar: %w", ref, err)
		}
		if n >= maxTarEntries {
			return nil, fault.Errorf(fault.Integrity, "%s: more than %d tar entries", ref, maxTarEntries)
		}
		name, err := cleanMember(h.Name)
		if err != nil {
			return nil, fault.Errorf(fault.Integrity, "%s: %w", ref, err)
		}
		if _, dup := t.files[name]; dup {
			return nil, fault.Errorf(fault.Integrity, "%s: duplicate tar entry %q", ref, h.Name)
		}
		switch h.Typeflag {
		case tar.TypeDir:
			continue
		case tar.TypeReg:
			off, err := f.Seek(0, io.SeekCurrent)
			if err != nil {
				return nil, fault.Errorf(fault.Env, "%s: %w", ref, err)
			}
			if h.Size < 0 || off+h.Size > st.Size() {
				return nil, fault.Errorf(fault.Integrity, "%s: tar entry %q runs past the end of the file (truncated?)", ref, h.Name)
			}
			t.files[name] = section{off: off, size: h.Size}
		case tar.TypeSymlink:
			if !allowLinks {
				return nil, fault.Errorf(fault.Integrity, "%s: tar entry %q is a link; image archives hold only files and directories", ref, h.Name)
			}
			target := h.Linkname
			if !strings.HasPrefix(target, "/") {
				target = path.Join(path.Dir(name), target)
			}
			target, err := cleanMember(target)
			if err != nil {
				return nil, fault.Errorf(fault.Integrity, "%s: link %q: %w", ref, h.Name, err)
			}
			t.links[name] = target
		default:
			return nil, fault.Errorf(fault.Integrity, "%s: tar entry %q has unsupported type %q", ref, h.Name, string(h.Typeflag))
		}
	}
	return t, nil
}

// cleanMember normalizes a member name and rejects ones that would escape.
func cleanMember(n string) (string, error) {
	if n == "" || strings.HasPrefix(n, "/") || strings.Contains(n, "\\") {
		return "", fmt.Errorf("unsafe tar entry name %q", n)
	}
	for _, part := range strings.Split(n, "/") {
		if part == ".." {
			return "", fmt.Errorf("unsafe tar entry name %q", n)
		}
	}
	c := path.Clean(n)
	if c == "." {
		return "", fmt.Errorf("unsafe tar entry name %q", n)
	}
	return c, nil
}

func (t *tarFiles) lookup(name string) (section, bool) {
	name = path.Clean(name)
	for hops := 0; hops < 8; hops++ {
		if s, ok := t.files[name]; ok {
			return s, true
		}
		next, ok := t.links[name]
		if !ok {
			return section{}, false
		}
		name = next
	}
	return section{}, false
}

func (t *tarFiles) open(name string) (io.ReadCloser, error) {
	s, ok := t.lookup(name)
	if !ok {
		return nil, openErr(t.ref+": "+name, fs.ErrNotExist)
	}
	return withContext(t.ctx, io.NopCloser(io.NewSectionReader(t.f, s.off, s.size))), nil
}

func (t *tarFiles) size(name string) (int64, bool) {
	s, ok := t.lookup(name)
	return s.size, ok
}

func (t *tarFiles) statSize(name string) (int64, error) {
	if n, ok := t.size(name); ok {
		return n, nil
	}
	return 0, openErr(t.ref+": "+name, fs.ErrNotExist)
}

func (t *tarFiles) where() string { return t.ref }
func (t *tarFiles) Close() error  { return t.f.Close() }
