package pack

import (
	"bytes"
	"io"
	"sort"
)

func bytesReader(b []byte) io.Reader { return bytes.NewReader(b) }

func sortPatchStats(s []PatchStat) {
	sort.Slice(s, func(i, j int) bool {
		if s[i].Image != s[j].Image {
			return s[i].Image < s[j].Image
		}
		return s[i].Layer < s[j].Layer
	})
}
