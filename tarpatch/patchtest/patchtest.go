// Package patchtest builds hostile tarpatch patches for tests: op streams
// written by hand (doc.go of package tarpatch has the format), so a test
// can claim sizes, windows and section lengths the encoder never would.
// Both tarpatch's own bomb tests and cmd/diffah's end-to-end bomb tests
// (which measure the binary's peak RSS) use it.
package patchtest

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand"
	"sync"
	"testing"

	"github.com/klauspost/compress/zstd"
)

// Op bytes of the "diffah-tar/1" format.
const (
	OpEnd     = 0
	OpLit     = 1
	OpCopy    = 2
	OpDelta   = 3
	OpMatch   = 4
	OpMatchIn = 5
)

// Magic starts a patch in the op form.
const Magic = "DFHTAR1\n"

var frames sync.Map

// Zeros is one zstd frame decoding to n zero bytes: a few KiB for
// hundreds of MiB. Frames are cached per (n, window).
func Zeros(tb testing.TB, n int64, window int) []byte {
	tb.Helper()
	key := fmt.Sprint(n, "/", window)
	if z, ok := frames.Load(key); ok {
		return z.([]byte)
	}
	var buf bytes.Buffer
	enc := encoder(tb, &buf, window)
	chunk := make([]byte, 1<<20)
	for left := n; left > 0; left -= int64(len(chunk)) {
		if _, err := enc.Write(chunk[:min(left, int64(len(chunk)))]); err != nil {
			tb.Fatal(err)
		}
	}
	if err := enc.Close(); err != nil {
		tb.Fatal(err)
	}
	frames.Store(key, buf.Bytes())
	return buf.Bytes()
}

// Random is one zstd frame of n incompressible bytes (cached too).
func Random(tb testing.TB, n int, seed int64) []byte {
	tb.Helper()
	key := fmt.Sprint("random/", n, "/", seed)
	if z, ok := frames.Load(key); ok {
		return z.([]byte)
	}
	b := make([]byte, n)
	rand.New(rand.NewSource(seed)).Read(b)
	var buf bytes.Buffer
	enc := encoder(tb, &buf, 1<<20)
	enc.Write(b)
	if err := enc.Close(); err != nil {
		tb.Fatal(err)
	}
	frames.Store(key, buf.Bytes())
	return buf.Bytes()
}

func encoder(tb testing.TB, w *bytes.Buffer, window int) *zstd.Encoder {
	tb.Helper()
	enc, err := zstd.NewWriter(w, zstd.WithEncoderConcurrency(1), zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithWindowSize(window), zstd.WithEncoderCRC(false))
	if err != nil {
		tb.Fatal(err)
	}
	return enc
}

// Patch frames ops, END appended, as a patch whose op stream is one zstd
// stream with the given window.
func Patch(tb testing.TB, window int, ops ...[]byte) []byte {
	tb.Helper()
	var buf bytes.Buffer
	buf.WriteString(Magic)
	enc := encoder(tb, &buf, window)
	for _, op := range ops {
		enc.Write(op)
	}
	enc.Write([]byte{OpEnd})
	if err := enc.Close(); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

// U appends uvarints.
func U(b []byte, vs ...uint64) []byte {
	for _, v := range vs {
		b = binary.AppendUvarint(b, v)
	}
	return b
}

// Section is a length-prefixed section (a MATCH stream, a payload).
func Section(b, data []byte) []byte { return append(U(b, uint64(len(data))), data...) }

// Ranges is a range list making an n-byte dictionary from source 0's
// first srcLen bytes, repeated (the last range cut to fit).
func Ranges(srcLen, n uint64) []byte {
	k := (n + srcLen - 1) / srcLen
	b := U(nil, k)
	for i := range k {
		l := srcLen
		if i == k-1 && n%srcLen != 0 {
			l = n % srcLen
		}
		b = U(b, 0, 0, l)
	}
	return b
}

// Lit is a literal run of n zero bytes (the op stream compresses it
// away: only its window bounds what it costs).
func Lit(n uint64) []byte { return append(U([]byte{OpLit}, n), make([]byte, n)...) }

// Delta is a DELTA op with a dict-byte dictionary from source 0 (of
// srcLen bytes), an output length, and a payload of about payloadLen
// bytes decoding to twice outLen.
func Delta(tb testing.TB, srcLen, dict, outLen, payloadLen uint64) []byte {
	op := U(append([]byte{OpDelta}, Ranges(srcLen, dict)...), outLen)
	payload := Zeros(tb, int64(outLen)*2, 1<<20)
	payload = append(payload, make([]byte, max(0, int64(payloadLen)-int64(len(payload))))...)
	return Section(op, payload)
}

// Match is a MATCH op with a dict-byte dictionary (none when dict is 0)
// and the four sections given (zstd frames).
func Match(srcLen, dict, outLen uint64, secs [4][]byte) []byte {
	op := []byte{OpMatch}
	if dict > 0 {
		op = append(op, Ranges(srcLen, dict)...)
	} else {
		op = U(op, 0)
	}
	op = U(op, outLen)
	for _, s := range secs {
		op = Section(op, s)
	}
	return op
}

// MatchZeros is a MATCH without a dictionary whose three number sections
// each decode to secLen zero bytes and whose literals to 4×outLen: the
// 20 KB archive that once made resolve allocate 2 GB.
func MatchZeros(tb testing.TB, outLen uint64, secLen int64) []byte {
	z := Zeros(tb, secLen, 1<<20)
	return Match(0, 0, outLen, [4][]byte{z, z, z, Zeros(tb, int64(outLen)*4, 1<<20)})
}
