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
//   - DELTA: the file is compressed with zstd using its old version (same
//     path, or the same path once version numbers are ignored) as a raw
//     dictionary, so only what changed costs bytes. Files larger than the
//     chunk size are cut into chunks, each with the matching region of the
//     old file as its dictionary, which keeps memory bounded.
//   - LIT: the bytes themselves, in one long zstd stream shared with the
//     headers, so new files still benefit from each other.
//
// # Format (Codec "diffah-tar/1")
//
//	patch  = magic "DFHTAR1\n" zstd(ops)
//	ops    = { op } END
//	op     = LIT  uvarint(n) n*byte
//	       | COPY uvarint(src) uvarint(off) uvarint(n)
//	       | DELTA uvarint(nranges) { uvarint(src) uvarint(off) uvarint(len) }
//	               uvarint(outLen) uvarint(encLen) encLen*byte
//	END    = 0x00        LIT = 0x01   COPY = 0x02   DELTA = 0x03
//
// COPY and DELTA offsets address the sources' uncompressed bytes. A DELTA's
// dictionary is the concatenation of its ranges; its payload is one zstd
// frame compressed against that raw dictionary and must decode to exactly
// outLen bytes. After END the zstd stream must end. The decoder refuses
// unknown ops, ranges outside a source, dictionaries over MaxDict, outputs
// over DecodeOptions.MaxOutput and trailing data, and never panics on
// hostile input; what it cannot check (that the output is the layer the
// caller expects) the caller checks against the layer's diffID.
package tarpatch
