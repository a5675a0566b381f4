package imgref

import "strings"

// ParseRegistry tells a registry reference (docker://HOST/REPO[:TAG|@DIGEST])
// from a file name, for arguments that take either (an archive to read or
// write). ok is false for anything else, which is then a file name; a
// malformed docker:// reference is an error.
func ParseRegistry(s string) (r Ref, ok bool, err error) {
	if !strings.HasPrefix(s, "docker://") {
		return Ref{}, false, nil
	}
	r, err = Parse(s)
	return r, err == nil, err
}

// IsRegistry says whether ref names an image in a registry (docker://),
// read over the network, rather than a local one.
func IsRegistry(ref string) bool {
	_, ok, _ := ParseRegistry(ref)
	return ok
}
