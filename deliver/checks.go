package deliver

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/diffah/diffah/fault"
	"github.com/diffah/diffah/imgref"
	"github.com/diffah/diffah/internal/lock"
	"github.com/diffah/diffah/sidecar"
)

// The checks here run before any work: a refusal costs no read of a
// baseline and writes nothing.

// CheckNewFile refuses an existing output file (exit 2) unless force,
// with which the write replaces it atomically. flag names the option
// for the message ("-o").
func CheckNewFile(flag, path string, force bool) error {
	if force || path == "" || path == "-" {
		return nil
	}
	if _, err := os.Lstat(path); errors.Is(err, fs.ErrNotExist) {
		return nil
	} else if err != nil {
		return fault.Errorf(fault.Env, "%s %s: %w", flag, path, err)
	}
	return fault.WithHint(fault.Errorf(fault.Usage, "%s %s: already exists; nothing was written", flag, path), fault.Usage,
		"pass --force to replace it (atomically: the old one stays until the new one is complete), or choose a new name")
}

// ClaimFile takes the lock of the output file path and refuses it when it
// exists, unless force (CheckNewFile): both before any work. Stdout (""
// or "-") and a registry (docker://) need neither.
func ClaimFile(ctx context.Context, flag, path string, force bool, o lock.Options) (release func(), err error) {
	if _, remote, _ := imgref.ParseRegistry(path); remote || path == "" || path == "-" {
		return func() {}, nil
	}
	locks, err := lock.AcquireAll(ctx, []string{path}, o)
	if err != nil {
		return nil, err
	}
	if err := CheckNewFile(flag, path, force); err != nil {
		locks.Release()
		return nil, err
	}
	return locks.Release, nil
}

// CheckNewOutputs applies CheckNewFile to each image output that is
// replaced whole (oci-archive:, docker-archive:, dir:). An oci: layout
// is not: writing adds or moves a tag in it.
func CheckNewOutputs(outs map[string]imgref.Ref, force bool) error {
	for _, r := range outs {
		switch r.Transport {
		case imgref.OCIArchive, imgref.DockerArchive, imgref.Dir:
			if err := CheckNewFile("-o "+r.String()+":", r.Path, force); err != nil {
				return err
			}
		}
	}
	return nil
}

// CheckOutputsFor checks, once the sidecar is read and before anything
// else, that each output can take its image: the image exists in the
// delta, and a docker-archive can hold it as-is (or allowConvert). A
// docker-archive output without NAME:TAG is given the target's own name
// and tag (outs is updated), which is logged.
func CheckOutputsFor(sc *sidecar.Sidecar, outs map[string]imgref.Ref, allowConvert bool, log *slog.Logger) error {
	if _, ok := outs[""]; ok && len(sc.Images) != 1 {
		return fault.Errorf(fault.Usage, "-o: the delta holds %d images; name each output: -o NAME=OUTREF", len(sc.Images))
	}
	for nm, ref := range outs {
		var im *sidecar.Image
		for i := range sc.Images {
			if nm == "" || sc.Images[i].Name == nm {
				im = &sc.Images[i]
				break
			}
		}
		if im == nil {
			return fault.Errorf(fault.Usage, "-o %s=…: the delta has no image %q", nm, nm)
		}
		if ref.Transport != imgref.DockerArchive {
			continue
		}
		manifest, config, layers, err := descriptors(im)
		if err != nil {
			return err
		}
		if err := imgref.CheckWritable(ref, manifest, config, layers, allowConvert); err != nil {
			return err
		}
		if ref.Tag == "" {
			ref.Tag = targetNameTag(im)
			outs[nm] = ref
			if log != nil {
				log.Warn("no NAME:TAG given for the docker-archive output: naming the image after the target", "output", ref.Path, "name", ref.Tag, "target", im.Target.Ref)
			}
		}
	}
	return nil
}

// targetNameTag is the NAME:TAG a docker-archive output gets when none is
// given: the target's own repository and tag for a registry target, else
// the image's name and the target's tag (or latest).
func targetNameTag(im *sidecar.Image) string {
	tag := "latest"
	if r, err := imgref.Parse(im.Target.Ref); err == nil {
		if !r.Local() {
			// docker:// or docker-daemon: NAME[:TAG] (not @DIGEST, not an
			// engine's image ID sha256:HEX)
			if t, err := name.NewTag(r.Path); err == nil && !strings.Contains(r.Path, "@") && !strings.HasPrefix(r.Path, "sha256:") {
				return t.Context().Name() + ":" + t.TagStr()
			}
		} else if r.Tag != "" && !strings.ContainsAny(r.Tag, ":@/") {
			tag = r.Tag
		}
	}
	n := strings.ToLower(im.Name)
	if _, err := name.NewTag(n + ":" + tag); err != nil {
		return "image:" + tag
	}
	return n + ":" + tag
}

// descriptors are the manifest, config and layer descriptors of im as
// imgref.CheckWritable takes them.
func descriptors(im *sidecar.Image) (manifest, config v1.Descriptor, layers []v1.Descriptor, err error) {
	d := im.Target.Manifest
	if manifest, err = imgref.Descriptor(d.MediaType, d.Digest, d.Size, "image "+im.Name+" manifest"); err != nil {
		return
	}
	for _, b := range im.Blobs {
		if b.Role != sidecar.RoleConfig && b.Role != sidecar.RoleLayer {
			continue
		}
		var desc v1.Descriptor
		if desc, err = imgref.Descriptor(b.MediaType, b.Digest, b.Size, "image "+im.Name+" blob"); err != nil {
			return
		}
		if b.Role == sidecar.RoleLayer {
			layers = append(layers, desc)
		} else if config.Digest.Hex == "" {
			config = desc
		}
	}
	return
}

// CheckPlatform refuses --platform when ref names a single image of
// another platform (imgref.Open ignores the flag for a single image).
func CheckPlatform(flag, want string, ref string, img *imgref.Image) error {
	if want == "" || img.IndexDigest != "" || img.Platform == "" || platformMatches(want, img.Platform) {
		return nil
	}
	return fault.WithHint(fault.Errorf(fault.Usage, "%s %s: %s is a single image for %s, not an index; it has no %s", flag, want, ref, img.Platform, want),
		fault.Usage, fmt.Sprintf("the platforms it has: %s; drop %s or name an image of that platform", img.Platform, flag))
}

// CheckDeltaPlatform refuses an import's --platform that is not the
// platform the sidecar records for an image of the delta: the baseline
// would be read for a platform the delta cannot rebuild. Without
// --platform the sidecar's platform is used, so there is nothing to check.
func CheckDeltaPlatform(sc *sidecar.Sidecar, want string) error {
	if want == "" {
		return nil
	}
	for _, im := range sc.Images {
		if p := im.Target.Platform; p != "" && !platformMatches(want, p) {
			return fault.WithHint(fault.Errorf(fault.Usage, "--platform %s: the delta's image %q is for %s", want, im.Name, p),
				fault.Usage, fmt.Sprintf("drop --platform (a baseline that is an index is then read for %s, the platform the delta records)", p))
		}
	}
	return nil
}

// platformMatches compares os/arch[/variant]; an unset variant in want
// matches any.
func platformMatches(want, have string) bool {
	w, h := strings.Split(want, "/"), strings.Split(have, "/")
	if len(w) < 2 || len(h) < 2 {
		return want == have
	}
	if w[0] != h[0] || w[1] != h[1] {
		return false
	}
	return len(w) < 3 || len(h) >= 3 && w[2] == h[2]
}
