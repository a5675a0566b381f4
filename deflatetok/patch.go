package deflatetok

import (
	"bufio"
	"encoding/binary"
	"io"
)

// A patch of a gzip layer (codec diffah-deflate/1) is its tar patch
// followed by the patch of its token form:
//
//	patch = magic "DFHDEFL1" uvarint(formSize) uvarint(tarLen)
//	        tarLen*byte (a tarpatch patch: the layer's tar from the
//	                     baseline's tars)
//	        blobpatch patch (the token form from the baseline blob's)
//
// formSize bounds the token form the second part may produce.
const patchMagic = "DFHDEFL1"

// A patch of codec diffah-deflate-model/2 (or /1) has the same layout
// with the magic "DFHDMOD1", and the layer's model form (EncodeModel:
// "DFHMODL2", or "DFHMODL1" in /1) in place of the token-form patch: it
// needs no baseline blob, only the tar's baselines.
const modelPatchMagic = "DFHDMOD1"

// PatchHeader is the head of a diffah-deflate/1 patch.
type PatchHeader struct {
	FormSize int64
	TarLen   int64
}

// WritePatchHeader writes the head of a patch.
func WritePatchHeader(w io.Writer, h PatchHeader) error { return writePatchHeader(w, h, patchMagic) }

// WriteModelPatchHeader writes the head of a diffah-deflate-model patch.
func WriteModelPatchHeader(w io.Writer, h PatchHeader) error {
	return writePatchHeader(w, h, modelPatchMagic)
}

// ReadModelPatchHeader is ReadPatchHeader for diffah-deflate-model/1 and /2.
func ReadModelPatchHeader(r *bufio.Reader, payloadSize, blobSize int64) (PatchHeader, error) {
	return readPatchHeader(r, payloadSize, blobSize, modelPatchMagic)
}

func writePatchHeader(w io.Writer, h PatchHeader, magic string) error {
	b := append([]byte(magic), binary.AppendUvarint(nil, uint64(h.FormSize))...)
	b = binary.AppendUvarint(b, uint64(h.TarLen))
	_, err := w.Write(b)
	return err
}

// ReadPatchHeader reads the head of a patch of payloadSize bytes for a
// blob of blobSize bytes, refusing sizes the rest cannot hold: the tar
// patch must fit in the payload, and the token form may be at most
// MaxFormRatio times the blob (each token costs at least one bit of it).
func ReadPatchHeader(r *bufio.Reader, payloadSize, blobSize int64) (PatchHeader, error) {
	return readPatchHeader(r, payloadSize, blobSize, patchMagic)
}

func readPatchHeader(r *bufio.Reader, payloadSize, blobSize int64, magic string) (PatchHeader, error) {
	m := make([]byte, len(magic))
	if _, err := io.ReadFull(r, m); err != nil || string(m) != magic {
		return PatchHeader{}, corrupt("not a %s patch (bad magic)", map[string]string{patchMagic: "diffah-deflate/1", modelPatchMagic: "diffah-deflate-model"}[magic])
	}
	fs, err := binary.ReadUvarint(r)
	if err != nil {
		return PatchHeader{}, corrupt("form size: %v", err)
	}
	tl, err := binary.ReadUvarint(r)
	if err != nil {
		return PatchHeader{}, corrupt("tar patch length: %v", err)
	}
	if fs > uint64(MaxFormRatio*blobSize+1<<20) {
		return PatchHeader{}, corrupt("token form of %d bytes for a %d-byte blob", fs, blobSize)
	}
	if tl > uint64(payloadSize) {
		return PatchHeader{}, corrupt("tar patch of %d bytes in a %d-byte payload", tl, payloadSize)
	}
	return PatchHeader{FormSize: int64(fs), TarLen: int64(tl)}, nil
}

// MaxFormRatio bounds the token form's size against the blob's: a match
// token is 6 bytes of form and at least 2 bits of blob, a literal run
// 1+ bytes for at least 1 bit.
const MaxFormRatio = 24
