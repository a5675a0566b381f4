package pack

import (
	"github.com/diffah/diffah/sidecar"
	"github.com/diffah/diffah/tarpatch"
)

// sidecarFiles is how many files per patched layer the sidecar lists: a
// listed file costs the archive about 200 bytes of sidecar, so 64 keep it
// to about 13 KiB per layer (a Debian security update's 1.9 MB archive
// grows by under 1%), while `plan | inspect --files` lists every file.
const sidecarFiles = 64

// FileCosts is what a sidecar records of a tar patch's file costs c, in a
// patch entry of entrySize bytes: the costliest files (up to max; 0: all)
// that are not copied unchanged, the rest summed. Whatever entrySize
// holds beyond the tar patch (diffah-deflate/1: the token form's patch
// and its header) is FormBytes. nil when c is nil or does not fit.
func FileCosts(c *tarpatch.Costs, entrySize int64, max int) *sidecar.FileCosts {
	if c == nil {
		return nil
	}
	fc := &sidecar.FileCosts{Files: []sidecar.FileCost{}, OtherBytes: c.Meta, Whole: c.Whole}
	tar := c.Meta
	for _, f := range c.Costliest() {
		tar += f.Bytes
		switch {
		case f.Encoding == "copy":
			fc.Copied++
			fc.CopiedBytes += f.Bytes
		case max <= 0 || len(fc.Files) < max:
			if f.OldPath == f.Path {
				f.OldPath = "" // the sidecar names only another path
			}
			fc.Files = append(fc.Files, f)
		default:
			fc.Unlisted++
			fc.UnlistedBytes += f.Bytes
		}
	}
	if entrySize < tar {
		// Not the entry these costs describe: record nothing rather than
		// something that does not add up.
		return nil
	}
	fc.FormBytes = entrySize - tar
	return fc
}
