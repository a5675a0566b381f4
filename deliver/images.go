package deliver

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/opencontainers/go-digest"

	"github.com/diffah/diffah/fault"
	"github.com/diffah/diffah/imgdiff"
	"github.com/diffah/diffah/imgref"
	"github.com/diffah/diffah/resolve"
	"github.com/diffah/diffah/sidecar"
)

// OpenBaselines opens each --baseline argument: REF, or NAME=REF per
// image of a bundle. The returned function closes them all.
func OpenBaselines(ctx context.Context, args []string, o imgref.Options) (map[string]resolve.Baseline, func(), error) {
	return openBaselines(ctx, args, o.Platform, func(string) string { return o.Platform }, o)
}

// OpenBaselinesFor opens the baselines of the images sc describes. With
// no platform given, a baseline that is an index is read for the
// platform the sidecar records for its image (for an unnamed baseline:
// the platform all images share).
func OpenBaselinesFor(ctx context.Context, sc *sidecar.Sidecar, args []string, platform string, o imgref.Options) (map[string]resolve.Baseline, func(), error) {
	of := func(name string) string {
		if platform != "" {
			return platform
		}
		p, set := "", false
		for _, im := range sc.Images {
			if name != "" && im.Name != name {
				continue
			}
			if set && im.Target.Platform != p {
				return ""
			}
			p, set = im.Target.Platform, true
		}
		return p
	}
	return openBaselines(ctx, args, platform, of, o)
}

// OpenBaselinesForLayout opens the baselines for resolving the partial
// layout dir as OpenBaselinesFor does (its sidecar read from dir; a
// --platform its images are not for refused first); a layout already
// complete needs none of that.
func OpenBaselinesForLayout(ctx context.Context, dir string, args []string, platform string, o imgref.Options) (map[string]resolve.Baseline, func(), error) {
	sc, err := resolve.ReadSidecar(dir)
	if err != nil {
		return nil, nil, err
	}
	if sc == nil {
		return OpenBaselines(ctx, args, o)
	}
	if err := CheckDeltaPlatform(sc, platform); err != nil {
		return nil, nil, err
	}
	return OpenBaselinesFor(ctx, sc, args, platform, o)
}

func openBaselines(ctx context.Context, args []string, flag string, platformOf func(string) string, o imgref.Options) (map[string]resolve.Baseline, func(), error) {
	out := map[string]resolve.Baseline{}
	var closers []func() error
	closeAll := func() {
		for _, c := range closers {
			c()
		}
	}
	for _, arg := range args {
		name, ref := splitNamed(arg)
		if _, dup := out[name]; dup {
			closeAll()
			return nil, nil, fault.Errorf(fault.Usage, "--baseline %s: given twice for image %q", arg, name)
		}
		r, err := imgref.Parse(ref)
		if err != nil {
			closeAll()
			return nil, nil, fmt.Errorf("--baseline %s: %w", arg, err)
		}
		o.Platform = platformOf(name)
		img, err := imgref.Open(ctx, r, o)
		if err != nil {
			closeAll()
			return nil, nil, fmt.Errorf("--baseline %s: %w", arg, err)
		}
		closers = append(closers, img.Close)
		if err := CheckPlatform("--platform", flag, ref, img); err != nil {
			closeAll()
			return nil, nil, err
		}
		out[name] = resolve.Baseline{Ref: ref, Image: img}
	}
	return out, closeAll, nil
}

// CheckBaselineArgs parses each --baseline argument without opening it,
// so that a malformed one is refused before anything is read.
func CheckBaselineArgs(args []string) error {
	seen := map[string]bool{}
	for _, arg := range args {
		name, ref := splitNamed(arg)
		if seen[name] {
			return fault.Errorf(fault.Usage, "--baseline %s: given twice for image %q", arg, name)
		}
		seen[name] = true
		if _, err := imgref.Parse(ref); err != nil {
			return fmt.Errorf("--baseline %s: %w", arg, err)
		}
	}
	return nil
}

// splitNamed splits NAME=REF; a "=" after a transport's colon belongs to
// the reference.
func splitNamed(arg string) (name, ref string) {
	if n, r, ok := strings.Cut(arg, "="); ok && !strings.Contains(n, ":") {
		return n, r
	}
	return "", arg
}

// ParseOutputs parses each -o argument: OUTREF, or NAME=OUTREF per image.
func ParseOutputs(args []string) (map[string]imgref.Ref, error) {
	out := map[string]imgref.Ref{}
	for _, a := range args {
		name, ref := splitNamed(a)
		r, err := imgref.Parse(ref)
		if err != nil {
			return nil, fmt.Errorf("-o %s: %w", a, err)
		}
		if _, dup := out[name]; dup {
			return nil, fault.Errorf(fault.Usage, "-o %s: given twice for image %q", a, name)
		}
		out[name] = r
	}
	return out, nil
}

// LocalPaths are the files and directories that refs write (docker://
// and docker-daemon: outputs are not local: nothing to lock here).
func LocalPaths(refs map[string]imgref.Ref) []string {
	var out []string
	for _, r := range refs {
		if r.Local() {
			out = append(out, r.Path)
		}
	}
	return out
}

// CheckOutputs fails before any work on outputs that cannot be written
// (a container engine that is not running, say).
func CheckOutputs(ctx context.Context, outs map[string]imgref.Ref) error {
	for _, r := range outs {
		if err := imgref.CheckOutput(ctx, r); err != nil {
			return fmt.Errorf("-o %s: %w", r, err)
		}
	}
	return nil
}

// Worst is the error for a report in which not every image resolved.
func Worst(rep *resolve.Report) error {
	if k := rep.Worst(); k != 0 {
		return fault.Errorf(k, "resolve: not every image was resolved (see the report above)")
	}
	return nil
}

// Written is one image written to its output. ID is the image ID a
// container engine reported (docker-daemon: outputs): the engine keeps
// the config, whose digest it is, not the manifest, so the ID is what to
// check the image by there.
type Written struct {
	Image    string
	Output   imgref.Ref
	Manifest digest.Digest
	ID       string
	// Converted is the manifest digest the output holds when it is not
	// Manifest: a docker-archive written with --allow-convert.
	Converted digest.Digest
}

// WriteImages copies resolved images from the layout dir to their
// outputs, calling written (when set) after each; a push to the registry
// of the image's baseline mounts shared layers from it.
func WriteImages(ctx context.Context, log *slog.Logger, dir string, rep *resolve.Report, outs map[string]imgref.Ref, bases map[string]resolve.Baseline, o imgref.Options, written func(Written)) error {
	if len(outs) == 0 {
		return nil
	}
	if log == nil {
		log = slog.Default()
	}
	if _, ok := outs[""]; ok && len(rep.Images) != 1 {
		return fault.Errorf(fault.Usage, "-o: the delta holds %d images; name each output: -o NAME=OUTREF", len(rep.Images))
	}
	for name, ref := range outs {
		im := findImage(rep, name)
		if im == nil {
			return fault.Errorf(fault.Usage, "-o %s=…: the delta has no image %q", name, name)
		}
		if im.Status != resolve.StatusOK {
			log.Warn("not writing an unresolved image", "image", im.Name, "output", ref.String())
			continue
		}
		src, err := imgref.Open(ctx, imgref.Ref{Transport: imgref.OCI, Path: dir, Tag: im.Name}, imgref.Options{})
		if err != nil {
			return fmt.Errorf("reading resolved image %q: %w", im.Name, err)
		}
		var img v1.Image = src
		if b, ok := bases[im.Name]; ok {
			img = mountable(img, b, ref, o.Insecure)
		} else if b, ok := bases[""]; ok {
			img = mountable(img, b, ref, o.Insecure)
		}
		var id string
		var converted digest.Digest
		if ref.Transport == imgref.DockerArchive {
			if h, herr := imgref.DockerArchiveDigest(img); herr == nil && h.String() != im.ManifestDigest.String() {
				converted = digest.Digest(h.String())
			}
		}
		if ref.Transport == imgref.DockerDaemon {
			id, err = imgref.LoadDaemon(ctx, ref, img, o)
		} else {
			err = imgref.Write(ctx, ref, img, o)
		}
		src.Close()
		if err != nil {
			return fmt.Errorf("-o %s: %w", ref.String(), err)
		}
		log.Info("image written", "image", im.Name, "output", ref.String(), "manifest", im.ManifestDigest)
		if written != nil {
			written(Written{Image: im.Name, Output: ref, Manifest: im.ManifestDigest, ID: id, Converted: converted})
		}
	}
	return nil
}

// MountableReuse says which reused layers import need not download: those
// of an image whose output is a repository on the same registry as its
// baseline, where the push mounts them from the baseline's repository.
func MountableReuse(bases map[string]resolve.Baseline, outs map[string]imgref.Ref, insecure bool) func(string, sidecar.Blob) bool {
	return func(name string, b sidecar.Blob) bool {
		if b.From != "" {
			// Held by another image's baseline, which the push does not
			// mount from: it must be in the layout.
			return false
		}
		out, ok := outs[name]
		if !ok {
			out, ok = outs[""]
		}
		base, bok := bases[name]
		if !bok {
			base, bok = bases[""]
		}
		if !ok || !bok {
			return false
		}
		img, isRef := base.Image.(*imgref.Image)
		return isRef && imgref.SameRegistry(img.Ref, out, insecure)
	}
}

// mountable lets a push to the baseline's registry mount shared layers
// from the baseline's repository instead of uploading them.
func mountable(img v1.Image, b resolve.Baseline, out imgref.Ref, insecure bool) v1.Image {
	if base, ok := b.Image.(*imgref.Image); ok {
		return imgref.WithMounts(img, base, out, insecure)
	}
	return img
}

// ImageReport is the report of the image an output named name ("" for
// the only one) takes; nil when there is none.
func ImageReport(rep *resolve.Report, name string) *resolve.ImageReport { return findImage(rep, name) }

func findImage(rep *resolve.Report, name string) *resolve.ImageReport {
	for i := range rep.Images {
		if name == "" || rep.Images[i].Name == name {
			return &rep.Images[i]
		}
	}
	return nil
}

// Diff opens the images refs (named REF0 and REF1 in errors) and compares
// them file by file.
func Diff(ctx context.Context, refs [2]string, o imgref.Options, do imgdiff.Options) (*imgdiff.Result, error) {
	var imgs [2]*imgref.Image
	for i, ref := range refs {
		r, err := imgref.Parse(ref)
		if err != nil {
			return nil, fmt.Errorf("REF%d: %w", i, err)
		}
		img, err := imgref.Open(ctx, r, o)
		if err != nil {
			return nil, fmt.Errorf("REF%d: %w", i, err)
		}
		defer img.Close()
		imgs[i] = img
	}
	return imgdiff.Compare(ctx, imgs[0], imgs[1], do)
}
