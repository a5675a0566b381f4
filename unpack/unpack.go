// Package unpack reads a delta archive in one pass, from a pipe or a file,
// verifying every entry against the sidecar as it streams, and writes a
// partial OCI image layout: the shipped blobs, index.json naming every
// image, and the sidecar and patches under diffah/ for resolve.
package unpack

import (
	"archive/tar"
	"bufio"
	"context"
	"crypto/ecdsa"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/klauspost/compress/zstd"
	"github.com/opencontainers/go-digest"

	"github.com/diffah/diffah/fault"
	"github.com/diffah/diffah/internal/atomicdir"
	"github.com/diffah/diffah/internal/ctxio"
	"github.com/diffah/diffah/internal/layout"
	"github.com/diffah/diffah/internal/progress"
	"github.com/diffah/diffah/recompress"
	"github.com/diffah/diffah/sidecar"
	"github.com/diffah/diffah/signature"
)

// Options tune Read.
type Options struct {
	// VerifyKey, when set, requires a signature by this key and checks it
	// before anything is written.
	VerifyKey *ecdsa.PublicKey
	// Replace lets Read replace an existing directory.
	Replace bool
	Log     *slog.Logger
	// Progress, when set, receives a progress line (a terminal).
	Progress io.Writer
	// Preflight, when set, is called with the verified sidecar before
	// anything is written; an error stops Read there (import checks its
	// baselines with it, so a wrong baseline costs no unpacking).
	Preflight func(*sidecar.Sidecar) error
}

// Result is what Read found.
type Result struct {
	Sidecar *sidecar.Sidecar
	// Signed is true when the archive carried a signature; KeyID names
	// the key that signed it (verified only when Options.VerifyKey is set).
	Signed bool
	KeyID  string
	// Bytes counts the archive bytes read (after whole-archive
	// decompression).
	Bytes int64
}

// maxTrailer bounds the zero padding accepted after the end-of-archive
// marker (tar writers pad to their record size).
const maxTrailer = 1 << 20

// Read unpacks the archive from r into dir, atomically: dir appears only
// when every entry has verified.
func Read(ctx context.Context, r io.Reader, dir string, o Options) (*Result, error) {
	if err := CheckOutput(dir, o.Replace); err != nil {
		return nil, err
	}
	var res *Result
	var tmp *atomicdir.Dir
	// Removed however Read ends (error or panic); a no-op once committed.
	defer func() {
		if tmp != nil {
			tmp.Abort()
		}
	}()
	res, err := read(ctx, r, func() (string, error) {
		var err error
		tmp, err = atomicdir.New(dir)
		if err != nil {
			return "", err
		}
		return tmp.Path, nil
	}, o)
	if err != nil {
		return nil, hintDamaged(err)
	}
	if err := tmp.Commit(o.Replace); err != nil {
		return nil, fmt.Errorf("unpack: %w", err)
	}
	return res, nil
}

// CheckOutput says, before anything is read, whether dir can take the
// layout: it must not exist, unless replace, and then only an OCI
// layout (one unpacked before, say) or an empty directory is replaced,
// never a directory of something else or a file.
func CheckOutput(dir string, replace bool) error {
	if !layout.Exists(dir) {
		return nil
	}
	if !replace {
		return fault.WithHint(fault.Errorf(fault.Usage, "unpack: %s: already exists; nothing was written", dir), fault.Usage,
			"pass --force to replace it (atomically: the old one stays until the new one is complete), or unpack into a new directory")
	}
	st, err := os.Lstat(dir)
	if err != nil {
		return fault.Errorf(fault.Env, "unpack: %w", err)
	}
	if st.IsDir() {
		if _, err := os.Lstat(filepath.Join(dir, "oci-layout")); err == nil {
			return nil
		}
		if ents, err := os.ReadDir(dir); err == nil && len(ents) == 0 {
			return nil
		}
	}
	return fault.WithHint(fault.Errorf(fault.Usage, "unpack: %s: exists and is neither an OCI layout nor an empty directory; refusing to replace it, even with --force", dir), fault.Usage,
		"unpack into a new directory")
}

// hintDamaged gives an integrity error that carries no hint of its own
// the next step a user can take: the archive itself is bad.
func hintDamaged(err error) error {
	if err == nil || fault.KindOf(err, 0) != fault.Integrity || fault.HintOf(err) != "" {
		return err
	}
	return fault.WithHint(err, fault.Integrity, "the archive was damaged or altered: get a fresh copy from its producer (and compare its sha256 with theirs)")
}

// Head reads only the sidecar and signature at the start of the archive
// (checking the signature when o.VerifyKey is set): enough to inspect an
// archive or to plan its import without reading the blobs.
func Head(r io.Reader, o Options) (*Result, error) {
	h, err := head(r, o)
	if err != nil {
		return nil, hintDamaged(err)
	}
	return h.res, nil
}

// maxConfig bounds a config HeadConfigs reads (the sidecar's own limit
// bounds the blob sizes it states; this bounds what inspect holds).
const maxConfig = 4 << 20

// HeadConfigs is Head, then reads on while the entries are the shipped
// manifests and configs of the sidecar's images (pack writes them first:
// they are small), each checked against its digest, and stops at the
// first other entry. It returns the configs by digest: what made each
// layer (the config history) is in them, for inspect.
func HeadConfigs(r io.Reader, o Options) (*Result, map[digest.Digest][]byte, error) {
	h, err := head(r, o)
	if err != nil {
		return nil, nil, hintDamaged(err)
	}
	defer h.close()
	sc := h.res.Sidecar
	role := map[digest.Digest]string{}
	for _, im := range sc.Images {
		for _, b := range im.Blobs {
			if b.Action == sidecar.Ship && (b.Role == sidecar.RoleManifest || b.Role == sidecar.RoleConfig) {
				role[b.Digest] = b.Role
			}
		}
	}
	configs := map[digest.Digest][]byte{}
	hdr := h.hdr
	for i, e := range sc.Entries {
		if i > 0 {
			if hdr, err = next(h.tr); err != nil && !errors.Is(err, io.EOF) {
				return nil, nil, hintDamaged(err)
			}
		}
		rl, ok := role[e.Digest]
		if hdr == nil || !ok || hdr.Name != e.Name || e.Name != sidecar.BlobEntryName(e.Digest) || hdr.Size != e.Size || e.Size > maxConfig {
			break
		}
		b, err := readSmall(h.tr, hdr, maxConfig)
		if err != nil {
			return nil, nil, hintDamaged(err)
		}
		if digest.FromBytes(b) != e.Digest {
			return nil, nil, hintDamaged(fault.Errorf(fault.Integrity, "unpack: entry %q does not match its digest", e.Name))
		}
		if rl == sidecar.RoleConfig {
			configs[e.Digest] = b
		}
	}
	return h.res, configs, nil
}

type headState struct {
	res     *Result
	tr      *tar.Reader
	in      io.Reader
	counter *ctxio.CountingReader
	scBytes []byte
	sig     []byte
	// hdr is the entry after the sidecar and signature (nil at the end).
	hdr   *tar.Header
	close func()
	// tarBytes counts what the tar reader consumed (after decompression).
	tarBytes *ctxio.CountingReader
}

func head(r io.Reader, o Options) (*headState, error) {
	counter := &ctxio.CountingReader{R: inputReader{r}}
	br := bufio.NewReaderSize(counter, 1<<20)
	var in io.Reader = br
	closeZ := func() {}
	magic, _ := br.Peek(4)
	if recompress.IsZstd(magic) { // archives may be compressed as a whole
		zr, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(1<<27), zstd.WithDecoderMaxMemory(1<<30))
		if err != nil {
			return nil, fault.Errorf(fault.Internal, "unpack: %w", err)
		}
		closeZ = zr.Close
		in = zr
	}
	tc := &ctxio.CountingReader{R: in}
	tr := tar.NewReader(tc)
	res := &Result{}
	scBytes, err := nextEntry(tr, sidecar.EntryName, sidecar.MaxSize, "the first entry")
	if err != nil {
		return nil, err
	}
	sc, err := sidecar.ParseBytes(scBytes)
	if err != nil {
		return nil, fmt.Errorf("unpack: %w", err)
	}
	res.Sidecar = sc
	// The signature, if any, comes right after the sidecar; the first
	// blob entry may come instead.
	hdr, err := next(tr)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	var sig []byte
	if hdr != nil && hdr.Name == signature.EntryName {
		if sig, err = readSmall(tr, hdr, 64<<10); err != nil {
			return nil, err
		}
		env, err := signature.Parse(sig)
		if err != nil {
			return nil, fmt.Errorf("unpack: %s: %w", signature.EntryName, err)
		}
		res.Signed, res.KeyID = true, env.KeyID
		if hdr, err = next(tr); err != nil && !errors.Is(err, io.EOF) {
			return nil, err
		}
	}
	if o.VerifyKey != nil {
		if sig == nil {
			return nil, fault.WithHint(fault.Errorf(fault.Signature, "unpack: the archive is not signed, and --verify-key requires a signature"),
				fault.Signature, "ask the producer for a signed archive (`diffah pack --sign-key`)")
		}
		if err := signature.Verify(scBytes, sig, o.VerifyKey); err != nil {
			return nil, fmt.Errorf("unpack: %w", err)
		}
	}
	return &headState{res: res, tr: tr, in: in, counter: counter, scBytes: scBytes, sig: sig, hdr: hdr, close: closeZ, tarBytes: tc}, nil
}

func read(ctx context.Context, r io.Reader, mkdir func() (string, error), o Options) (*Result, error) {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	h, err := head(r, o)
	if err != nil {
		return nil, err
	}
	defer h.close()
	res, tr, in, counter, scBytes, sig, hdr, sc := h.res, h.tr, h.in, h.counter, h.scBytes, h.sig, h.hdr, h.res.Sidecar
	var bar *progress.Bar
	if o.Progress != nil {
		var total int64
		for _, e := range sc.Entries {
			total += e.Size
		}
		bar = progress.New(o.Progress, "unpack", total)
		defer bar.Done()
	}
	if o.Preflight != nil {
		if err := o.Preflight(sc); err != nil {
			return nil, err
		}
	}
	dir, err := mkdir()
	if err != nil {
		return nil, fmt.Errorf("unpack: %w", err)
	}
	if err := layout.WriteFile(filepath.Join(dir, layout.SidecarFile), scBytes); err != nil {
		return nil, err
	}
	if sig != nil {
		if err := layout.WriteFile(filepath.Join(dir, layout.SignatureFile), sig); err != nil {
			return nil, err
		}
	}
	for i, e := range sc.Entries {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if i > 0 {
			if hdr, err = next(tr); err != nil && !errors.Is(err, io.EOF) {
				return nil, err
			}
		}
		if hdr == nil {
			return nil, fault.WithHint(fault.Errorf(fault.Integrity, "unpack: the archive ends before entry %q (%d of %d): truncated?", e.Name, i+1, len(sc.Entries)),
				fault.Integrity, "if it was split, concatenate every part in order (cat part.* | diffah unpack ...)")
		}
		if hdr.Name != e.Name {
			return nil, fault.Errorf(fault.Integrity, "unpack: entry %d is %q, the sidecar lists %q there: the archive was reordered or altered", i+1, hdr.Name, e.Name)
		}
		if hdr.Size != e.Size {
			return nil, fault.Errorf(fault.Integrity, "unpack: entry %q is %d bytes, the sidecar says %d", e.Name, hdr.Size, e.Size)
		}
		path := layout.BlobPath(dir, e.Digest)
		if e.Name == sidecar.PatchEntryName(e.Digest) {
			path = layout.PatchPath(dir, e.Digest)
		}
		var src io.Reader = tarErrReader{tr}
		if bar != nil {
			src = bar.Reader(src)
		}
		if err := layout.WriteVerified(path, src, e.Digest, e.Size, "unpack: entry "+e.Name); err != nil {
			return nil, mapTarErr(err)
		}
		hdr = nil
	}
	if len(sc.Entries) == 0 && hdr != nil {
		return nil, fault.Errorf(fault.Integrity, "unpack: unexpected entry %q: the sidecar lists no entries", hdr.Name)
	}
	if len(sc.Entries) > 0 {
		dataEnd := h.tarBytes.N
		if hdr, err = next(tr); err == nil {
			return nil, fault.Errorf(fault.Integrity, "unpack: unexpected entry %q after the last listed entry", hdr.Name)
		} else if !errors.Is(err, io.EOF) {
			return nil, err
		}
		// archive/tar reports a clean io.EOF when the stream stops at a
		// block boundary; pack always writes the two zero blocks, so an
		// archive without them was cut short (a lost last part of a split).
		if want := (dataEnd+511)/512*512 + 1024; h.tarBytes.N < want {
			return nil, fault.WithHint(fault.Errorf(fault.Integrity, "unpack: the archive ends without its end-of-archive marker (%d of at least %d bytes): truncated?", h.tarBytes.N, want),
				fault.Integrity, "if it was split, concatenate every part in order (cat part.* | diffah unpack ...)")
		}
	}
	if err := drainZeros(in); err != nil {
		return nil, err
	}
	if err := checkImages(dir, sc); err != nil {
		return nil, err
	}
	var manifests []layout.Descriptor
	for _, im := range sc.Images {
		m := im.Target.Manifest
		manifests = append(manifests, layout.Entry(m.MediaType, m.Digest, m.Size, im.Name))
	}
	if err := layout.WriteIndex(dir, manifests); err != nil {
		return nil, err
	}
	res.Bytes = counter.N
	o.Log.Info("unpacked", "images", len(sc.Images), "entries", len(sc.Entries), "bytes", counter.N)
	return res, nil
}

// next returns the next header, refusing anything but plain files with
// safe names. It returns io.EOF at the end-of-archive marker.
func next(tr *tar.Reader) (*tar.Header, error) {
	hdr, err := tr.Next()
	if errors.Is(err, io.EOF) {
		return nil, io.EOF
	}
	if err != nil {
		return nil, mapTarErr(fault.Errorf(fault.Integrity, "unpack: reading the archive: %w", err))
	}
	if hdr.Typeflag != tar.TypeReg {
		return nil, fault.Errorf(fault.Integrity, "unpack: entry %q is not a regular file (type %q): refusing links, devices and directories", hdr.Name, string(hdr.Typeflag))
	}
	// A size from the header (a PAX record can say up to 2^63-1) is
	// range-checked before anything compares, adds or reads it.
	if err := layout.CheckSize(hdr.Size, fmt.Sprintf("unpack: entry %.200q", hdr.Name)); err != nil {
		return nil, err
	}
	return hdr, nil
}

func nextEntry(tr *tar.Reader, name string, limit int64, where string) ([]byte, error) {
	hdr, err := next(tr)
	if errors.Is(err, io.EOF) {
		return nil, fault.WithHint(fault.Errorf(fault.Integrity, "unpack: the input is empty or not a diffah archive"),
			fault.Integrity, "pipe in a file made by `diffah pack` or `diffah export`")
	}
	if err != nil {
		return nil, fault.WithHint(err, fault.Integrity, "is this a file made by `diffah pack`?")
	}
	if hdr.Name != name {
		return nil, fault.Errorf(fault.Integrity, "unpack: %s is %q, expected %q: not a diffah archive", where, hdr.Name, name)
	}
	return readSmall(tr, hdr, limit)
}

func readSmall(tr *tar.Reader, hdr *tar.Header, limit int64) ([]byte, error) {
	if hdr.Size > limit {
		return nil, fault.Errorf(fault.Integrity, "unpack: entry %q is %d bytes, more than the limit of %d", hdr.Name, hdr.Size, limit)
	}
	b := make([]byte, hdr.Size)
	if _, err := io.ReadFull(tr, b); err != nil {
		return nil, mapTarErr(fault.Errorf(fault.Integrity, "unpack: reading entry %q: %w", hdr.Name, err))
	}
	return b, nil
}

// drainZeros reads what follows the end-of-archive marker: only zero
// padding may follow, and reading to EOF lets a zstd frame check its
// checksum.
func drainZeros(r io.Reader) error {
	buf := make([]byte, 32<<10)
	var total int64
	for {
		n, err := r.Read(buf)
		for _, c := range buf[:n] {
			if c != 0 {
				return fault.Errorf(fault.Integrity, "unpack: data after the end of the archive: concatenated or corrupt input")
			}
		}
		total += int64(n)
		if total > maxTrailer {
			return fault.Errorf(fault.Integrity, "unpack: more than %d bytes of padding after the end of the archive", maxTrailer)
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return mapTarErr(fault.Errorf(fault.Integrity, "unpack: reading the end of the archive: %w", err))
		}
	}
}

// mapTarErr turns a short read into the message a user can act on.
func mapTarErr(err error) error {
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return fault.WithHint(err, fault.Integrity, "the archive is truncated; if it was split, concatenate every part in order")
	}
	return err
}

// inputReader tags a failure to read the input as Env.
type inputReader struct{ r io.Reader }

func (c inputReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if err != nil && !errors.Is(err, io.EOF) {
		err = fault.Errorf(fault.Env, "unpack: reading input: %w", err)
	}
	return n, err
}

// tarErrReader tags read errors inside an entry as integrity failures:
// they mean the archive is cut short or malformed, not that disk failed.
type tarErrReader struct{ r io.Reader }

func (t tarErrReader) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	if err != nil && !errors.Is(err, io.EOF) && fault.KindOf(err, 0) == 0 {
		err = mapTarErr(fault.Errorf(fault.Integrity, "unpack: reading the archive: %w", err))
	}
	return n, err
}

// checkImages compares what the sidecar says about each image with the
// verified bytes now on disk — the manifest (always shipped) and the
// config when shipped — so index.json, written from the sidecar, cannot
// disagree with the manifests it points to. resolve checks again, with
// the reused config, before it completes the layout.
func checkImages(dir string, sc *sidecar.Sidecar) error {
	for i := range sc.Images {
		im := &sc.Images[i]
		raw, err := os.ReadFile(layout.BlobPath(dir, im.Target.Manifest.Digest))
		if err != nil {
			return fault.Errorf(fault.Env, "unpack: image %q: %w", im.Name, err)
		}
		if err := im.CheckManifest(raw); err != nil {
			return fmt.Errorf("unpack: %w", err)
		}
		if im.Blobs[1].Action != sidecar.Ship {
			continue
		}
		cfg, err := os.ReadFile(layout.BlobPath(dir, im.Blobs[1].Digest))
		if err != nil {
			return fault.Errorf(fault.Env, "unpack: image %q: %w", im.Name, err)
		}
		if err := im.CheckConfig(cfg); err != nil {
			return fmt.Errorf("unpack: %w", err)
		}
	}
	return nil
}
