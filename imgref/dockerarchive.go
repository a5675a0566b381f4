package imgref

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"io/fs"
	"log/slog"
	"sort"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/diffah/diffah/fault"
	"github.com/diffah/diffah/recompress"
)

// Media types of the Docker schema 2 manifest synthesized for docker-archive.
const (
	dockerConfigType   types.MediaType = "application/vnd.docker.container.image.v1+json"
	dockerLayerTar     types.MediaType = "application/vnd.docker.image.rootfs.diff.tar"
	dockerLayerGzip    types.MediaType = "application/vnd.docker.image.rootfs.diff.tar.gzip"
	dockerLayerZstd    types.MediaType = "application/vnd.docker.image.rootfs.diff.tar.zstd"
	dockerManifestType types.MediaType = "application/vnd.docker.distribution.manifest.v2+json"
)

// archiveEntry is one element of a docker-archive manifest.json.
type archiveEntry struct {
	Config   string
	RepoTags []string
	Layers   []string
}

// synthManifest and synthDescriptor fix the exact form of the manifest
// synthesized for a docker-archive, since the archive stores none. It is
// json.Marshal of these structs, compact, fields in this order:
//
//	{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json",
//	 "config":{"mediaType":"application/vnd.docker.container.image.v1+json","size":N,"digest":"sha256:…"},
//	 "layers":[{"mediaType":"…rootfs.diff.tar[.gzip|.zstd]","size":N,"digest":"sha256:…"},…]}
//
// (without the line breaks). This is also the byte form ggcr and
// containers/image produce for such a manifest, so an image built by those
// tools with matching layer types survives a trip through docker-archive
// with its digest.
type synthManifest struct {
	SchemaVersion int               `json:"schemaVersion"`
	MediaType     types.MediaType   `json:"mediaType"`
	Config        synthDescriptor   `json:"config"`
	Layers        []synthDescriptor `json:"layers"`
}

type synthDescriptor struct {
	MediaType types.MediaType `json:"mediaType"`
	Size      int64           `json:"size"`
	Digest    v1.Hash         `json:"digest"`
}

func marshalSynth(cfg synthDescriptor, layers []synthDescriptor) []byte {
	if layers == nil {
		layers = []synthDescriptor{}
	}
	b, err := json.Marshal(synthManifest{SchemaVersion: 2, MediaType: dockerManifestType, Config: cfg, Layers: layers})
	if err != nil {
		panic(err) // plain structs of strings and ints always encode
	}
	return b
}

// sniffLayer names the Docker layer media type for a blob's first bytes.
func sniffLayer(magic []byte) types.MediaType {
	switch {
	case recompress.IsGzip(magic):
		return dockerLayerGzip
	case recompress.IsZstd(magic):
		return dockerLayerZstd
	}
	return dockerLayerTar
}

// dockerLayerType maps a declared layer media type to the one a
// docker-archive round trip would give it; "" if it has none.
func dockerLayerType(mt types.MediaType) types.MediaType {
	switch mt {
	case types.DockerLayer, types.OCILayer:
		return dockerLayerGzip
	case types.DockerUncompressedLayer, types.OCIUncompressedLayer:
		return dockerLayerTar
	case types.OCILayerZStd, dockerLayerZstd:
		return dockerLayerZstd
	}
	return ""
}

// readDockerArchive opens the image named tag ("" = the only one) in a
// docker save archive and synthesizes its manifest.
func readDockerArchive(tf *tarFiles, tag string) (*storeImage, error) {
	where := tf.where()
	rc, err := tf.open("manifest.json")
	if err != nil {
		return nil, fault.WithHint(err, fault.Env, "a docker-archive is what `docker save` writes; check the transport")
	}
	raw, err := readLimited(rc, maxManifestSize, where+": manifest.json")
	if err != nil {
		return nil, err
	}
	var entries []archiveEntry
	if err := json.Unmarshal(raw, &entries); err != nil {
		return nil, fault.Errorf(fault.Integrity, "%s: manifest.json: %w", where, err)
	}
	e, err := selectArchiveEntry(entries, tag, where)
	if err != nil {
		return nil, err
	}
	byDigest := map[v1.Hash]string{}
	cfgName, err := cleanMember(e.Config)
	if err != nil {
		return nil, fault.Errorf(fault.Integrity, "%s: config: %w", where, err)
	}
	crc, err := tf.open(cfgName)
	if err != nil {
		return nil, err
	}
	cfg, err := readLimited(crc, maxConfigSize, where+": config "+cfgName)
	if err != nil {
		return nil, err
	}
	cfgDesc := synthDescriptor{MediaType: dockerConfigType, Size: int64(len(cfg)), Digest: sha256Hash(cfg)}
	if want, ok := hashFromBlobName(cfgName); ok && want != cfgDesc.Digest {
		return nil, fault.Errorf(fault.Integrity, "%s: config %s has digest %s", where, cfgName, cfgDesc.Digest)
	}
	byDigest[cfgDesc.Digest] = cfgName
	var layers []synthDescriptor
	for _, ln := range e.Layers {
		name, err := cleanMember(ln)
		if err != nil {
			return nil, fault.Errorf(fault.Integrity, "%s: layer: %w", where, err)
		}
		d, err := describeArchiveLayer(tf, name)
		if err != nil {
			return nil, err
		}
		byDigest[d.Digest] = name
		layers = append(layers, d)
	}
	blob := func(h v1.Hash) (io.ReadCloser, error) {
		n, ok := byDigest[h]
		if !ok {
			return nil, fault.Errorf(fault.Integrity, "%s: no blob %s", where, h)
		}
		if h == cfgDesc.Digest {
			return nopCloser(cfg), nil
		}
		return tf.open(n)
	}
	img, err := newStoreImage(where, marshalSynth(cfgDesc, layers), dockerManifestType, blob)
	if err != nil {
		return nil, err
	}
	img.blobSize = func(h v1.Hash) (int64, error) {
		n, ok := byDigest[h]
		if !ok {
			return 0, openErr(where+": blob "+h.String(), fs.ErrNotExist)
		}
		if h == cfgDesc.Digest {
			return cfgDesc.Size, nil
		}
		return tf.statSize(n)
	}
	return img, nil
}

// hashFromBlobName reads the digest out of a blobs/sha256/<hex> name.
func hashFromBlobName(n string) (v1.Hash, bool) {
	hx, ok := strings.CutPrefix(n, "blobs/sha256/")
	if !ok {
		return v1.Hash{}, false
	}
	if checkHash(v1.Hash{Algorithm: "sha256", Hex: hx}, n) != nil {
		return v1.Hash{}, false
	}
	return v1.Hash{Algorithm: "sha256", Hex: hx}, true
}

// describeArchiveLayer sniffs a layer's compression and finds its digest: a
// blobs/sha256/<hex> name states it (checked when the layer is read); a
// legacy <id>/layer.tar is hashed here, streaming.
func describeArchiveLayer(tf *tarFiles, name string) (synthDescriptor, error) {
	where := tf.where() + ": layer " + name
	size, ok := tf.size(name)
	if !ok {
		return synthDescriptor{}, fault.Errorf(fault.Integrity, "%s: listed in manifest.json but not in the archive", where)
	}
	rc, err := tf.open(name)
	if err != nil {
		return synthDescriptor{}, err
	}
	defer rc.Close()
	br := bufio.NewReader(rc)
	magic, _ := br.Peek(4)
	d := synthDescriptor{MediaType: sniffLayer(magic), Size: size}
	if h, ok := hashFromBlobName(name); ok {
		d.Digest = h
		return d, nil
	}
	hs := sha256.New()
	if _, err := io.Copy(hs, br); err != nil {
		return synthDescriptor{}, fault.Errorf(fault.Env, "%s: %w", where, err)
	}
	d.Digest = v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(hs.Sum(nil))}
	return d, nil
}

func selectArchiveEntry(entries []archiveEntry, tag, where string) (archiveEntry, error) {
	var tags []string
	for _, e := range entries {
		tags = append(tags, e.RepoTags...)
	}
	sort.Strings(tags)
	avail := strings.Join(tags, ", ")
	if avail == "" {
		avail = "none"
	}
	if tag == "" {
		switch len(entries) {
		case 1:
			return entries[0], nil
		case 0:
			return archiveEntry{}, fault.Errorf(fault.Integrity, "%s: manifest.json lists no images", where)
		}
		return archiveEntry{}, fault.WithHint(
			fault.Errorf(fault.Usage, "%s: the archive holds %d images; name one with :NAME:TAG (tags: %s)", where, len(entries), avail),
			fault.Usage, "use e.g. "+where+":"+firstOr(tags, "NAME:TAG"))
	}
	for _, e := range entries {
		for _, t := range e.RepoTags {
			if t == tag {
				return e, nil
			}
		}
	}
	return archiveEntry{}, fault.Errorf(fault.Env, "%s: no image tagged %q (tags: %s)", where, tag, avail)
}

// writeDockerArchive writes src as a docker load archive. The archive keeps
// no manifest, so unless the image's manifest is byte-for-byte the one
// readDockerArchive will synthesize, its digest would change: that is refused
// unless allowConvert, and then logged.
func writeDockerArchive(ctx context.Context, ref Ref, src *source, allowConvert bool, log *slog.Logger) error {
	where := ref.String()
	m := src.manifest
	if err := checkDockerArchive(where, src.digest, src.mt, &src.raw, m.Config, m.Layers, allowConvert, log); err != nil {
		return err
	}
	var layers []synthDescriptor
	for _, l := range m.Layers {
		mt := dockerLayerType(l.MediaType)
		if mt == "" {
			mt = dockerLayerGzip
		}
		layers = append(layers, synthDescriptor{MediaType: mt, Size: l.Size, Digest: l.Digest})
	}
	var tags []string
	if ref.Tag != "" {
		tags = []string{ref.Tag}
	}
	entry := archiveEntry{Config: "blobs/sha256/" + m.Config.Digest.Hex, RepoTags: tags, Layers: []string{}}
	for _, l := range m.Layers {
		entry.Layers = append(entry.Layers, "blobs/sha256/"+l.Digest.Hex)
	}
	mj, err := json.Marshal([]archiveEntry{entry})
	if err != nil {
		return fault.Errorf(fault.Internal, "encoding manifest.json: %w", err)
	}
	want := map[v1.Hash]types.MediaType{}
	for _, l := range layers {
		want[l.Digest] = l.MediaType
	}
	entries := []tarEntry{{name: "blobs/"}, {name: "blobs/sha256/"}, bytesEntry("manifest.json", mj)}
	for _, b := range src.blobs {
		b := b
		open := b.open
		if mt, isLayer := want[b.desc.Digest]; isLayer && !allowConvert {
			open = func() (io.ReadCloser, error) { return checkSniff(b, mt, where) }
		}
		entries = append(entries, tarEntry{name: "blobs/sha256/" + b.desc.Digest.Hex, size: b.desc.Size, open: open})
	}
	return writeTarFile(ctx, ref.Path, entries)
}

// checkSniff opens b and checks its first bytes agree with the compression
// its media type declares: reading the archive back sniffs them, so a
// mismatch would silently change the manifest.
func checkSniff(b srcBlob, want types.MediaType, where string) (io.ReadCloser, error) {
	rc, err := b.open()
	if err != nil {
		return nil, err
	}
	br := bufio.NewReader(rc)
	magic, _ := br.Peek(4)
	if got := sniffLayer(magic); got != want {
		rc.Close()
		return nil, fault.Errorf(fault.Integrity, "%s: layer %s is declared %s but its content looks like %s", where, b.desc.Digest, b.desc.MediaType, got)
	}
	return readCloser{br, rc}, nil
}
