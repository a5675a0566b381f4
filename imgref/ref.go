// Package imgref owns image references and transports: it parses skopeo-style
// transport:reference strings (oci:, oci-archive:, docker-archive:, docker://,
// dir:, docker-daemon:) and maps each to a go-containerregistry v1.Image for reading (Open)
// and to a writer (Write). Everything above it sees only v1.Image.
//
// Manifests and config files are passed through verbatim, so digests stay
// stable across transports; blobs are verified against their digests while
// they stream.
package imgref

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/diffah/diffah/fault"
)

// Transport names, as skopeo spells them.
const (
	OCI           = "oci"
	OCIArchive    = "oci-archive"
	DockerArchive = "docker-archive"
	Docker        = "docker"
	Dir           = "dir"
	// DockerDaemon is a Docker (or Podman service) image store, reached
	// over the Engine API (see daemon.go).
	DockerDaemon = "docker-daemon"
)

var transports = []string{OCI, OCIArchive, DockerArchive, Docker, Dir, DockerDaemon}

// Ref is a parsed image reference.
type Ref struct {
	// Transport is one of OCI, OCIArchive, DockerArchive, Docker, Dir.
	Transport string
	// Path is the directory or file for local transports; for Docker it is
	// the registry reference HOST/REPO[:TAG|@DIGEST] as written; for
	// DockerDaemon NAME[:TAG], NAME@DIGEST or an image ID ([@]sha256:HEX).
	Path string
	// Tag is the optional image name inside a local store: the
	// org.opencontainers.image.ref.name for oci and oci-archive, NAME:TAG
	// for docker-archive. Always "" for docker, docker-daemon and dir.
	Tag string
}

// ociRefName is the grammar of org.opencontainers.image.ref.name from the
// OCI image layout spec (the same one skopeo enforces).
var ociRefName = regexp.MustCompile(`^[A-Za-z0-9]+(([-._:@+]|--)[A-Za-z0-9]+)*(/[A-Za-z0-9]+(([-._:@+]|--)[A-Za-z0-9]+)*)*$`)

// Parse parses a transport:reference string. It is strict: a bare path or an
// unknown transport is a fault.Usage error with a hint.
func Parse(s string) (Ref, error) {
	if s == "" {
		return Ref{}, usage("empty image reference", "use e.g. oci:./dir, oci-archive:FILE, docker-archive:FILE, dir:DIR or docker://HOST/REPO:TAG")
	}
	if rest, ok := strings.CutPrefix(s, "docker://"); ok {
		return parseDocker(s, rest)
	}
	tr, rest, ok := strings.Cut(s, ":")
	if !ok {
		return Ref{}, usage(fmt.Sprintf("image reference %q has no transport", s), "did you mean "+suggest(s)+"?")
	}
	switch tr {
	case OCI, OCIArchive:
		p, tag, hasTag := strings.Cut(rest, ":")
		if p == "" {
			return Ref{}, usage(fmt.Sprintf("image reference %q: %s: needs a path", s, tr), "use "+tr+":PATH[:TAG]")
		}
		if hasTag && !ociRefName.MatchString(tag) {
			return Ref{}, usage(fmt.Sprintf("image reference %q: invalid tag %q", s, tag), "a tag is letters and digits joined by . _ - : @ + or /")
		}
		return Ref{Transport: tr, Path: p, Tag: tag}, nil
	case DockerArchive:
		p, tag, hasTag := strings.Cut(rest, ":")
		if p == "" {
			return Ref{}, usage(fmt.Sprintf("image reference %q: docker-archive: needs a file", s), "use docker-archive:FILE[:NAME:TAG]")
		}
		if hasTag {
			if err := checkNameTag(tag); err != nil {
				return Ref{}, usage(fmt.Sprintf("image reference %q: %v", s, err), "the name inside a docker-archive is NAME:TAG, e.g. docker-archive:app.tar:example.com/app:v2")
			}
		}
		return Ref{Transport: tr, Path: p, Tag: tag}, nil
	case Dir:
		if rest == "" {
			return Ref{}, usage(fmt.Sprintf("image reference %q: dir: needs a directory", s), "use dir:DIR")
		}
		return Ref{Transport: tr, Path: rest}, nil
	case DockerDaemon:
		return parseDaemon(s, rest)
	case Docker:
		return Ref{}, usage(fmt.Sprintf("image reference %q: the docker transport is written docker://", s), "did you mean docker://"+strings.TrimLeft(rest, "/")+"?")
	}
	if hostRef(s) || Kind(s) != "" {
		// 127.0.0.1:5000/app:v2 or a path with a colon: no transport
		// at all rather than an unknown one.
		return Ref{}, usage(fmt.Sprintf("image reference %q has no transport", s), "did you mean "+suggest(s)+"?")
	}
	hint := "did you mean " + suggest(s) + "?"
	if c := closestTransport(tr); c != "" {
		hint = "did you mean " + withTransport(c, rest) + "?"
	}
	return Ref{}, usage(fmt.Sprintf("image reference %q: unknown transport %q (known: %s)", s, tr, strings.Join(transports, ", ")), hint)
}

func parseDocker(s, rest string) (Ref, error) {
	if rest == "" {
		return Ref{}, usage(fmt.Sprintf("image reference %q: docker:// needs HOST/REPO[:TAG|@DIGEST]", s), "use e.g. docker://localhost:5000/app:v2")
	}
	if _, err := name.ParseReference(rest); err != nil {
		return Ref{}, usage(fmt.Sprintf("image reference %q: %v", s, err), "use docker://HOST/REPO[:TAG|@DIGEST]")
	}
	return Ref{Transport: Docker, Path: rest}, nil
}

// checkNameTag accepts NAME:TAG as docker-archive stores it in RepoTags: a
// repository with an explicit tag and no digest.
func checkNameTag(s string) error {
	if strings.Contains(s, "@") {
		return fmt.Errorf("%q: a docker-archive name cannot carry a digest", s)
	}
	last := s[strings.LastIndex(s, "/")+1:]
	if !strings.Contains(last, ":") {
		return fmt.Errorf("%q has no :TAG", s)
	}
	if _, err := name.NewTag(s); err != nil {
		return fmt.Errorf("%q is not NAME:TAG: %w", s, err)
	}
	return nil
}

// suggest proposes a reference for a string that lacks a valid
// transport: what the path holds when it exists (an OCI layout, a dir:
// image, an OCI or docker archive), docker:// for something shaped like
// HOST[:PORT]/REPO[:TAG], else a guess from the name.
func suggest(s string) string {
	if k := Kind(s); k != "" {
		return withTransport(k, s)
	}
	if hostRef(s) {
		return "docker://" + s
	}
	p := s
	if !strings.HasPrefix(p, "/") && !strings.HasPrefix(p, ".") {
		p = "./" + p
	}
	if strings.HasSuffix(p, ".tar") {
		return "oci-archive:" + p + " or docker-archive:" + p
	}
	return "oci:" + p
}

func usage(msg, hint string) error {
	return fault.WithHint(fault.Errorf(fault.Usage, "%s", msg), fault.Usage, hint)
}

// String formats r so that Parse(r.String()) == r.
func (r Ref) String() string {
	switch r.Transport {
	case Docker:
		return "docker://" + r.Path
	case Dir:
		return "dir:" + r.Path
	case DockerDaemon:
		return "docker-daemon:" + r.Path
	}
	if r.Tag != "" {
		return r.Transport + ":" + r.Path + ":" + r.Tag
	}
	return r.Transport + ":" + r.Path
}
