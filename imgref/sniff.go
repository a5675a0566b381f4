package imgref

import (
	"archive/tar"
	"errors"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/diffah/diffah/fault"
)

// Kind names what a local path holds, as a transport, or "" when it is
// none of them (or does not exist). It looks only at names (a directory's
// marker files, a tar's first entries), never at content, so it is cheap
// and safe on any input: used for hints only, never for decisions.
func Kind(path string) string {
	st, err := os.Stat(path)
	if err != nil {
		return ""
	}
	if st.IsDir() {
		switch {
		case isFile(filepath.Join(path, "oci-layout")) || isFile(filepath.Join(path, "index.json")):
			return OCI
		case isFile(filepath.Join(path, "version")) && isFile(filepath.Join(path, "manifest.json")):
			return Dir
		}
		return ""
	}
	if !st.Mode().IsRegular() {
		return ""
	}
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	tr := tar.NewReader(f)
	// A docker save archive lists manifest.json (often last); an OCI
	// archive has oci-layout and index.json. A few hundred headers are
	// enough to tell (docker save writes a handful per layer).
	for n := 0; n < 512; n++ {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) || err != nil {
			break
		}
		switch strings.TrimPrefix(h.Name, "./") {
		case "oci-layout", "index.json":
			return OCIArchive
		case "manifest.json", "repositories":
			return DockerArchive
		}
	}
	return ""
}

func isFile(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular()
}

// registryHost is HOST[:PORT] as a registry is named: a DNS name or IPv4
// address, or a bracketed IPv6 address, with an optional numeric port.
var registryHost = regexp.MustCompile(`^([A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*|\[[0-9A-Fa-f:.]+\])(:[0-9]{1,5})?$`)

// hostRef reports whether s is shaped like a registry reference,
// HOST[:PORT]/REPO[:TAG|@DIGEST]: its first component is a host
// (localhost, a name with a '.', an IP address, or any of them with a
// port) and a valid repository follows.
func hostRef(s string) bool {
	host, repo, ok := strings.Cut(s, "/")
	if !ok || repo == "" || !registryHost.MatchString(host) {
		return false
	}
	// A bare word ("app/x") is a path; localhost, a dotted name, an
	// address or anything with a port is a host.
	if host != "localhost" && !strings.ContainsAny(host, ".:[") {
		return false
	}
	_, err := parseDocker("docker://"+s, s)
	return err == nil
}

// closestTransport returns the known transport nearest to tr in edit
// distance when it is a plausible typo (at most two edits), or "".
func closestTransport(tr string) string {
	best, bestD := "", 3
	for _, t := range transports {
		if d := editDistance(strings.ToLower(tr), t); d < bestD {
			best, bestD = t, d
		}
	}
	return best
}

// editDistance is the optimal-string-alignment distance of a and b:
// insertions, deletions, substitutions and swaps of two neighbours each
// cost one ("dri" is one edit from "dir").
func editDistance(a, b string) int {
	d := make([][]int, len(a)+1)
	for i := range d {
		d[i] = make([]int, len(b)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(a)][len(b)]
}

// withTransport writes path as a reference of transport tr.
func withTransport(tr, path string) string {
	if tr == Docker {
		// dockr://HOST/REPO: the rest already carries the slashes.
		return "docker://" + strings.TrimLeft(path, "/")
	}
	return tr + ":" + path
}

// wrongTransport adds to a failure to open a local image what the path
// actually holds, when that is another transport's format (oci: on a dir:
// image, docker-archive: on an OCI archive): the error stays, the hint
// names the reference that would work.
func wrongTransport(ref Ref, err error) error {
	if !ref.Local() {
		return err
	}
	k := Kind(ref.Path)
	if k == "" || k == ref.Transport {
		return err
	}
	want := withTransport(k, ref.Path)
	if ref.Tag != "" && k != Dir {
		want += ":" + ref.Tag
	}
	return fault.WithHint(err, fault.KindOf(err, fault.Usage), ref.Path+" is "+kindName[k]+": use "+want)
}

var kindName = map[string]string{
	OCI:           "an OCI layout (oci:)",
	OCIArchive:    "an OCI archive (oci-archive:)",
	DockerArchive: "a docker save archive (docker-archive:)",
	Dir:           "a dir: image",
}
