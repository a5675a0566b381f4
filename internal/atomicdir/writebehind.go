package atomicdir

import (
	"io"

	"golang.org/x/sys/unix"
)

// Write-behind: a File asks the kernel to start writing each
// writeBehindChunk of what it has been given as soon as the chunk is
// complete, and waits for the chunk writeBehindLag chunks back to be on
// the disk. Without it, a large output (a rebuilt 3 GB layer, an archive
// on a USB stick) sits in the page cache until Commit's fsync, which then
// waits for all of it at the end while the CPU idles, after the progress
// bar has said 100 %; with it, the disk writes while the process computes,
// the dirty data of one file stays within a few chunks, and progress
// follows the disk. The range calls promise nothing about durability:
// Commit's fsync still does. Where the file system does not support them
// (an error), the file goes on without write-behind.
const (
	writeBehindChunk = 8 << 20
	writeBehindLag   = 2
)

// syncRange is the range call (a variable for the tests).
var syncRange = unix.SyncFileRange

// Write writes p at the end of what was written and starts the
// write-behind of every chunk it completes.
func (f *File) Write(p []byte) (int, error) {
	n, err := f.File.Write(p)
	f.wrote(int64(n))
	return n, err
}

// ReadFrom is os.File's (which may copy in the kernel), followed by the
// write-behind of what it wrote.
func (f *File) ReadFrom(r io.Reader) (int64, error) {
	n, err := f.File.ReadFrom(r)
	f.wrote(n)
	return n, err
}

// wrote accounts n more bytes written at the end of the file.
func (f *File) wrote(n int64) {
	f.written += n
	if f.noBehind {
		return
	}
	fd := int(f.Fd())
	for f.started+writeBehindChunk <= f.written {
		off := f.started
		if err := syncRange(fd, off, writeBehindChunk, unix.SYNC_FILE_RANGE_WRITE); err != nil {
			f.noBehind = true
			return
		}
		f.started += writeBehindChunk
		if back := off - writeBehindLag*writeBehindChunk; back >= 0 {
			if err := syncRange(fd, back, writeBehindChunk, unix.SYNC_FILE_RANGE_WAIT_BEFORE|unix.SYNC_FILE_RANGE_WRITE|unix.SYNC_FILE_RANGE_WAIT_AFTER); err != nil {
				f.noBehind = true
				return
			}
		}
	}
}
