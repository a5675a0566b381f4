package sidecar

import (
	"errors"
	"fmt"
	"regexp"
	"unicode/utf8"

	"github.com/diffah/diffah/internal/layout"
)

// MinorFileCosts (1.4) adds fileCosts on patched layers: what each file
// of the layer costs in its patch (inspect's "why is my delta big?").
// Older readers ignore it, as a newer minor version's field.
const MinorFileCosts = 4

// MaxFileCosts bounds the files a patched layer may list: the costliest;
// the others are summed (Unlisted), so the sidecar stays small whatever
// the layer. (diffah writes at most pack's sidecarFiles, fewer.)
const MaxFileCosts = 256

// FileCosts says what the files of a patched layer cost in its patch
// entry. Listed files, copied and unlisted files and OtherBytes and
// FormBytes add up to the entry's size as diffah writes them (not checked on read).
type FileCosts struct {
	// Files are the costliest files that are not copied unchanged,
	// costliest first; at most MaxFileCosts.
	Files []FileCost `json:"files"`
	// Copied counts the files whose content is copied unchanged from a
	// baseline layer (not listed); CopiedBytes is what they cost.
	Copied      int   `json:"copied"`
	CopiedBytes int64 `json:"copiedBytes"`
	// Unlisted counts the other files past MaxFileCosts; UnlistedBytes
	// is what they cost.
	Unlisted      int   `json:"unlisted"`
	UnlistedBytes int64 `json:"unlistedBytes"`
	// OtherBytes is what no file's content costs: tar headers, entries
	// without content (directories, links, empty files), padding, the
	// end-of-archive blocks and the patch's own framing.
	OtherBytes int64 `json:"otherBytes"`
	// FormBytes is, for diffah-deflate/1, the patch of the layer's
	// deflate token form (the gzip blocks around the content).
	FormBytes int64 `json:"formBytes,omitempty"`
	// Whole is set when the tar patch is one zstd frame of the whole tar
	// (tarpatch's whole form): each file's bytes are then estimates.
	Whole bool `json:"whole,omitempty"`
}

// FileCost is one file of a patched layer (tarpatch.FileCost).
type FileCost struct {
	Path string `json:"path"`
	// OldPath is the baseline file it was encoded against or copied
	// from, when its path is not Path; OldSize that file's size (0: no
	// old version, a new file).
	OldPath string `json:"oldPath,omitempty"`
	OldSize int64  `json:"oldSize,omitempty"`
	Size    int64  `json:"size"`
	// Encoding: copy, lit, delta, match, matchin, adiff, xadiff or whole,
	// several joined with "+".
	Encoding string `json:"encoding"`
	Bytes    int64  `json:"bytes"`
	// Estimated: Bytes is a proportional share of bytes compressed
	// together, not a measured size.
	Estimated bool `json:"estimated,omitempty"`
}

var encodingRE = regexp.MustCompile(`^[a-z]{1,16}(\+[a-z]{1,16}){0,7}$`)

// Total is what the listed and summed parts add up to.
func (fc *FileCosts) Total() int64 {
	t := fc.CopiedBytes + fc.UnlistedBytes + fc.OtherBytes + fc.FormBytes
	for _, f := range fc.Files {
		t += f.Bytes
	}
	return t
}

// check validates file costs: bounded counts, sizes and paths, costliest
// first.
func (fc *FileCosts) check() error {
	if len(fc.Files) > MaxFileCosts {
		return fmt.Errorf("fileCosts lists %d files, more than %d", len(fc.Files), MaxFileCosts)
	}
	if fc.Copied < 0 || fc.Unlisted < 0 || fc.Copied > 1<<30 || fc.Unlisted > 1<<30 {
		return errors.New("fileCosts: file counts out of range")
	}
	for what, n := range map[string]int64{"copiedBytes": fc.CopiedBytes, "unlistedBytes": fc.UnlistedBytes, "otherBytes": fc.OtherBytes, "formBytes": fc.FormBytes} {
		if err := layout.CheckSize(n, "fileCosts "+what); err != nil {
			return err
		}
	}
	for i, f := range fc.Files {
		if f.Path == "" || len(f.Path) > 4096 || len(f.OldPath) > 4096 || !utf8.ValidString(f.Path) || !utf8.ValidString(f.OldPath) {
			return fmt.Errorf("fileCosts file %d: path empty, over 4096 bytes or not UTF-8", i)
		}
		if !encodingRE.MatchString(f.Encoding) {
			return fmt.Errorf("fileCosts file %d (%.80q): encoding %.40q is not of the form name[+name]", i, f.Path, f.Encoding)
		}
		for what, n := range map[string]int64{"size": f.Size, "oldSize": f.OldSize, "bytes": f.Bytes} {
			if err := layout.CheckSize(n, fmt.Sprintf("fileCosts file %.80q %s", f.Path, what)); err != nil {
				return err
			}
		}
		if i > 0 && f.Bytes > fc.Files[i-1].Bytes {
			return fmt.Errorf("fileCosts files are not costliest first (file %d)", i)
		}
	}
	// That the parts add up to the entry (they do, as pack writes them)
	// is not checked: the costs are for people, a patch that does not
	// match them is still decoded and verified as any other, and a
	// hostile patch must meet the decoder's bounds, not this.
	return nil
}
