package imgref

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/diffah/diffah/fault"
	"github.com/diffah/diffah/internal/ctxio"
)

// openInside opens the file name (slash-separated, relative) of the local
// store rooted at root for reading, and only if it is a regular file that
// resolves inside root. Everything in a layout, dir: image or archive may
// be hostile, so:
//   - the path is resolved with openat2(RESOLVE_BENEATH): ".." or a
//     symbolic link (absolute, or relative but climbing out) that would
//     leave root is refused by the kernel before anything is read, so no
//     byte, size or digest of an outside file can reach an error message;
//   - the first open is O_PATH (no side effects, never blocks); only a
//     regular file is then opened for reading, O_NONBLOCK so that a FIFO
//     swapped in meanwhile cannot block open(2), and checked to be the
//     same inode again. FIFOs, sockets and devices are refused (a FIFO
//     would block a read forever, a device may never end).
//
// what names the file in errors (e.g. "oci:./app: blobs/sha256/ab12…").
func openInside(root, name, what string) (*os.File, error) {
	if name == "" || strings.HasPrefix(name, "/") {
		return nil, fault.Errorf(fault.Internal, "%s: not a relative name", what)
	}
	dir, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, openErr(what, &fs.PathError{Op: "open", Path: root, Err: err})
	}
	defer unix.Close(dir)
	how := &unix.OpenHow{Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_MAGICLINKS}
	at := func(flags uint64) (int, error) {
		// openat2 refuses flags that do not go with O_PATH.
		how.Flags = flags | unix.O_CLOEXEC
		for {
			fd, err := unix.Openat2(dir, filepath.FromSlash(name), how)
			if err != unix.EINTR {
				return fd, err
			}
		}
	}
	pfd, err := at(unix.O_PATH)
	if err != nil {
		return nil, insideErr(what, err)
	}
	var st unix.Stat_t
	err = unix.Fstat(pfd, &st)
	unix.Close(pfd)
	if err != nil {
		return nil, fault.Errorf(fault.Env, "%s: %w", what, err)
	}
	if err := regular(st.Mode, what); err != nil {
		return nil, err
	}
	fd, err := at(unix.O_RDONLY | unix.O_NONBLOCK | unix.O_NOCTTY)
	if err != nil {
		return nil, insideErr(what, err)
	}
	var st2 unix.Stat_t
	if err := unix.Fstat(fd, &st2); err != nil {
		unix.Close(fd)
		return nil, fault.Errorf(fault.Env, "%s: %w", what, err)
	}
	if err := regular(st2.Mode, what); err != nil || st2.Dev != st.Dev || st2.Ino != st.Ino {
		unix.Close(fd)
		if err == nil {
			err = fault.Errorf(fault.Integrity, "%s: changed while being opened; refused", what)
		}
		return nil, err
	}
	// Regular files never block; clear O_NONBLOCK so reads are plain.
	if err := unix.SetNonblock(fd, false); err != nil {
		unix.Close(fd)
		return nil, fault.Errorf(fault.Env, "%s: %w", what, err)
	}
	return os.NewFile(uintptr(fd), filepath.Join(root, filepath.FromSlash(name))), nil
}

// regular refuses anything but a regular file, naming its kind.
func regular(mode uint32, what string) error {
	var kind string
	switch mode & unix.S_IFMT {
	case unix.S_IFREG:
		return nil
	case unix.S_IFIFO:
		kind = "a FIFO"
	case unix.S_IFSOCK:
		kind = "a socket"
	case unix.S_IFCHR:
		kind = "a character device"
	case unix.S_IFBLK:
		kind = "a block device"
	case unix.S_IFDIR:
		kind = "a directory"
	default:
		kind = fmt.Sprintf("of file type %#o", mode&unix.S_IFMT)
	}
	return fault.WithHint(fault.Errorf(fault.Integrity, "%s: is %s, not a regular file; refused (hostile or damaged image)", what, kind),
		fault.Integrity, "an image store holds only regular files; get the image again from a trusted source")
}

// insideErr classifies a failed openat2 of a store member.
func insideErr(what string, err error) error {
	switch {
	case errors.Is(err, unix.EXDEV):
		return fault.WithHint(fault.Errorf(fault.Integrity, "%s: resolves outside the image (a symbolic link or \"..\" leaving it); refused without reading it", what),
			fault.Integrity, "an image store must be self-contained; get the image again from a trusted source")
	case errors.Is(err, unix.ELOOP):
		return fault.Errorf(fault.Integrity, "%s: too many levels of symbolic links; refused", what)
	case errors.Is(err, unix.ENOSYS):
		return fault.Errorf(fault.Env, "%s: this kernel lacks openat2(2) (Linux 5.6 or later is needed to read local images safely)", what)
	}
	return openErr(what, &fs.PathError{Op: "open", Path: what, Err: err})
}

// openRegular opens a file the user named (an archive given on the command
// line) for reading: symbolic links are followed, since the user chose the
// path, but it must be a regular file, and opening never blocks (a FIFO
// named as an archive would otherwise hang in open(2)).
func openRegular(path, what string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_NOCTTY, 0)
	if err != nil {
		return nil, openErr(what, err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fault.Errorf(fault.Env, "%s: %w", what, err)
	}
	if !st.Mode().IsRegular() {
		f.Close()
		return nil, fault.WithHint(fault.Errorf(fault.Usage, "%s: %s is not a regular file", what, path),
			fault.Usage, "name an archive file (a pipe or device cannot be read in place)")
	}
	if err := unix.SetNonblock(int(f.Fd()), false); err != nil {
		f.Close()
		return nil, fault.Errorf(fault.Env, "%s: %w", what, err)
	}
	return f, nil
}

// withContext makes every Read of rc check ctx first, so a long read (a
// huge layer) stops when the command is cancelled.
func withContext(ctx context.Context, rc io.ReadCloser) io.ReadCloser {
	if ctx == nil {
		return rc
	}
	return readCloser{ctxio.Reader{Ctx: ctx, R: rc}, rc}
}
