package imgref

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/diffah/diffah/fault"
)

// CheckWritable says, before any image byte is read, whether ref can
// store the image with the given manifest as-is: a docker-archive holds
// only Docker media types in its one canonical manifest form, and
// without allowConvert an image it would change is a usage error (the
// one Write would give at the end). Other transports hold any image.
func CheckWritable(ref Ref, manifest v1.Descriptor, config v1.Descriptor, layers []v1.Descriptor, allowConvert bool) error {
	if ref.Transport != DockerArchive || allowConvert {
		return nil
	}
	return checkDockerArchive(ref.String(), manifest.Digest, manifest.MediaType, nil, config, layers, false, nil)
}

// synthFor is the one manifest a docker-archive implies for an image of
// config and layers, with what in them is not Docker-typed.
func synthFor(config v1.Descriptor, ls []v1.Descriptor) ([]byte, []string) {
	cfg := synthDescriptor{MediaType: dockerConfigType, Size: config.Size, Digest: config.Digest}
	var layers []synthDescriptor
	var reasons []string
	for _, l := range ls {
		lmt := dockerLayerType(l.MediaType)
		if lmt == "" {
			reasons = append(reasons, fmt.Sprintf("layer %s has media type %s", l.Digest, l.MediaType))
			lmt = dockerLayerGzip
		}
		layers = append(layers, synthDescriptor{MediaType: lmt, Size: l.Size, Digest: l.Digest})
	}
	return marshalSynth(cfg, layers), reasons
}

// DockerArchiveDigest is the manifest digest of img once written to a
// docker-archive, whose one manifest is the canonical Docker form of its
// config and layers: the image's own digest when it is in that form
// already, else the digest of what --allow-convert makes of it.
func DockerArchiveDigest(img v1.Image) (v1.Hash, error) {
	m, err := img.Manifest()
	if err != nil {
		return v1.Hash{}, err
	}
	synth, _ := synthFor(m.Config, m.Layers)
	return sha256Hash(synth), nil
}

// checkDockerArchive compares the manifest (its raw bytes when known,
// else its digest) with the one a docker-archive would synthesize.
func checkDockerArchive(where string, dg v1.Hash, mt types.MediaType, raw *[]byte, config v1.Descriptor, ls []v1.Descriptor, allowConvert bool, log *slog.Logger) error {
	synth, reasons := synthFor(config, ls)
	same := sha256Hash(synth) == dg
	if raw != nil {
		same = bytes.Equal(synth, *raw)
	}
	if same {
		return nil
	}
	if mt != types.DockerManifestSchema2 {
		reasons = append(reasons, "its manifest is "+string(mt))
	} else {
		reasons = append(reasons, "its manifest is not in the canonical form a docker-archive implies")
	}
	newDigest := sha256Hash(synth)
	if !allowConvert {
		return fault.WithHint(
			fault.Errorf(fault.Usage, "%s cannot hold the image %s as-is (%s): it would come back as %s",
				where, dg, strings.Join(reasons, "; "), newDigest),
			fault.Usage, "pass --allow-convert to write it anyway (the manifest digest changes), or use oci:, oci-archive: or dir:")
	}
	log.Warn("converting image for docker-archive: digests change", "ref", where, "from", dg.String(), "to", newDigest.String(), "why", strings.Join(reasons, "; "))
	return nil
}
