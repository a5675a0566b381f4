// Package tarpatch is diffah's intra-layer codec: it encodes a layer's
// uncompressed tar as a patch against one or more baseline layers'
// uncompressed tars (the sources), and decodes it back byte for byte.
//
// The codec understands tar. Header blocks, padding and the end-of-archive
// trailer are kept verbatim, so any tar — PAX or GNU long names, odd
// padding, junk after the end — comes back exactly. Each regular file's
// content is encoded the cheapest way the encoder finds:
//
//   - COPY: an identical file exists in a source; only its position travels.
//   - MATCH: the file is diffed against its old version (same path, or the
//     same path once version numbers are ignored, or — when another source
//     file shares clearly more of its content, as for a moved file or a
//     path that now holds another program — that file; see pairing.go):
//     copies from the old file plus literals, in separately compressed
//     streams (see match.go). Best on text.
//   - DELTA: the file is compressed with zstd using its old version as a
//     raw dictionary. Best on machine code. The encoder keeps the smaller
//     of MATCH and DELTA, per chunk. Files larger than the chunk size are
//     cut into chunks, each with the matching region of the old file as
//     its dictionary, which keeps memory bounded. A file's dictionary may
//     also begin with an earlier file of the same layer and kind (the
//     decoder keeps the last HistSize bytes of its output), so an edit
//     repeated across files — bundled JavaScript, say — is paid once,
//     even when the earlier file holds the code at another indentation
//     (format 3: the range re-indented, see reindent.go).
//   - ADIFF (format 2): bsdiff's approximate copies — the bytewise
//     difference from the old file, mostly zero where a rebuild only moved
//     addresses, plus extra bytes — in three separately compressed streams
//     (see adiff.go). Tried beside DELTA wherever MATCH leaves much
//     behind; the smallest of the three is kept. Best on rebuilt machine
//     code and shared libraries.
//   - XADIFF (format 2): ADIFF on an ELF file whose zlib-compressed
//     sections (the DWARF Go's linker writes) are inflated, in the old file
//     and the new one, and deflated again when decoding — used only for
//     sections compress/zlib reproduces exactly (see elfz.go). A rebuild
//     rewrites compressed DWARF throughout; expanded, it differs a little.
//   - LIT: the bytes themselves, in one long zstd stream shared with the
//     headers, so new files still benefit from each other. That stream is
//     compressed against a dictionary of the sources' own header blocks
//     (headerDict), which encoder and decoder derive from the sources, so
//     an unchanged or renamed entry's header costs a few bytes.
//
// A small layer (sources and new tar each at most SmallLayer bytes) may
// instead travel whole: the tar as one zstd frame compressed against the
// concatenated sources, the way zstd --patch-from works. Encode makes
// both and keeps the smaller; for a handful of small edits the whole form
// wins, since it pays for one frame instead of one per changed file. For
// such small sources the shared stream's dictionary is their whole
// content rather than their header blocks. Format 4 adds a third form for
// small layers, the edit form (edit.go): the old entries kept byte for
// byte are COPY runs of entries, a changed file whose header differs only
// in its size costs that size's change (its header is the old one
// rebuilt, checksum and all), and everything else is one zstd frame
// holding only what changed, against the sources and the edited files'
// old content. A release bump of a small package (express 4.18.1 to
// 4.18.2: 230 kB of tar) is 234 bytes in it, against the whole form's 299
// and zstd -19 --patch-from's 277.
//
// With EncodeOptions.FileCosts, Encode also says what each file of the
// new tar costs in the patch (stats.go): the sidecar's fileCosts, which
// inspect shows.
//
// Similarity gives a caller with many baseline layers a cheap score (paths
// only, no hashing) of how much of a new layer each could help patch.
//
// # Format (Codec "diffah-tar/4"; Decode also reads "diffah-tar/3", "diffah-tar/2" and "diffah-tar/1")
//
//	patch  = magic "DFHTAR3\n" zstd(ops)
//	       | magic "DFHTAR2\n" zstd(ops)     (diffah-tar/2: ranges without shift)
//	       | magic "DFHTAR1\n" zstd(ops)     (diffah-tar/1: no ADIFF op either)
//	       | magic "DFHTAR1W" zstd(tar)   (whole form; small sources only)
//	       | magic "DFHTAR4E" edit        (edit form, diffah-tar/4 only;
//	                                      small sources only; see edit.go)
//
// A diffah-tar/4 patch is any of these but the format-1 and format-2
// ops; diffah-tar/3 is diffah-tar/4 without the edit form.
//
//	ops    = { op } END
//	op     = LIT  uvarint(n) n*byte
//	       | COPY uvarint(src) uvarint(off) uvarint(n)
//	       | DELTA ranges uvarint(outLen) uvarint(encLen) encLen*byte
//	       | MATCH ranges uvarint(outLen) section section section section
//	       | MATCHIN ranges uvarint(outLen) bare bare bare bare
//	       | ADIFF ranges uvarint(outLen) section section section
//	       | XADIFF ranges uvarint(outLen) zlibs uvarint(expLen) section section section
//	ranges = uvarint(nranges) { uvarint(src) uvarint(off) uvarint(len) varint(shift) }
//	         (shift in format 3 only; see reindent.go)
//	section = uvarint(n) n*byte (one zstd frame)   bare = uvarint(n) n*byte
//	END    = 0x00  LIT = 0x01  COPY = 0x02  DELTA = 0x03  MATCH = 0x04
//	MATCHIN = 0x05 (MATCH with its streams bare, compressed only by the
//	          patch's shared zstd stream: the cheap form for small edits)
//	ADIFF = 0x06  XADIFF = 0x07 (format 2 only; sections ctrl, diff, extra,
//	          and the zlib stream lists: see adiff.go and elfz.go)
//
// A range's src indexes the sources; src == len(sources) means the output
// itself, at an absolute offset within the last HistSize bytes written.
// A nonzero shift (format 3, at most 16 either way) re-indents the range's
// lines by that many spaces before it joins the dictionary (reindent.go):
// bundled code repeated at another depth, as TypeScript's typescript.js
// repeats tsserver.js two spaces deeper, is then paid once. MaxDict bounds
// the dictionary after shifting, checked as the range is measured.
//
// COPY and DELTA offsets address the sources' uncompressed bytes. A DELTA's
// dictionary is the concatenation of its ranges; its payload is one zstd
// frame compressed against that raw dictionary and must decode to exactly
// outLen bytes. A MATCH copy is at least 64 bytes (matchMin). After END
// the zstd stream must end. The decoder refuses unknown ops (ADIFF or
// XADIFF in a format-1 patch), ranges outside a source, edit-form ops
// naming entries the sources do not hold or adding up to more than the
// layer (checked before any output), ADIFF copies
// outside their dictionary, zlib streams that do not inflate, inflate past
// a fixed bound or do not recompress to their recorded length,
// dictionaries over MaxDict, op outputs over MaxOut, MATCH sections over
// their bound (one varint per possible copy), zstd windows over the
// encoder's, outputs over DecodeOptions.MaxOutput and trailing data —
// each bound checked as the bytes decode — and never panics on hostile
// input; what it cannot check (that the output is the layer the
// caller expects) the caller checks against the layer's diffID.
//
// A layer whose compressor cannot be replayed travels instead as a patch
// of its compressed bytes (package blobpatch, codec "diffah-blob/1") or,
// for gzip, of its deflate token form (package deflatetok, codec
// "diffah-deflate/1"); see README "Intra-layer deltas".
package tarpatch
