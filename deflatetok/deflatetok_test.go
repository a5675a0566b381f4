package deflatetok

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/diffah/diffah/fault"
)

func sample() []byte {
	var b bytes.Buffer
	for i := range 30000 {
		b.WriteString(strings.Repeat("token form of deflate ", i%5+1))
		b.WriteByte(byte(i * 7))
		b.WriteString("\n")
	}
	return b.Bytes()
}

// realCompressors are the tools scripts/deps.sh installs, plus python3's
// zlib; each case is skipped when its tool is missing.
var realCompressors = [][]string{
	{"gzip", "-1", "-c"}, {"gzip", "-6", "-c"}, {"gzip", "-9", "-c"},
	{"pigz", "-6", "-c"}, {"pigz", "-p", "1", "-9", "-c"},
	{"libdeflate-gzip", "-6", "-c"}, {"libdeflate-gzip", "-12", "-c"},
	{"sh", "-c", "command -v zopfli >/dev/null || exit 99; f=$(mktemp); head -c 65536 > $f; zopfli --i1 -c $f; rm -f $f"}, // slow: a prefix
	{"python3", "-c", "import zlib,sys;c=zlib.compressobj(6,zlib.DEFLATED,31);d=sys.stdin.buffer.read();sys.stdout.buffer.write(c.compress(d)+c.flush())"},
	{"python3", "-c", "import gzip,sys;d=sys.stdin.buffer.read();sys.stdout.buffer.write(gzip.compress(d[:5000],1)+gzip.compress(d[5000:],9)+bytes(7))"},
}

func compressWith(t *testing.T, argv []string, data []byte) []byte {
	t.Helper()
	if _, err := exec.LookPath(argv[0]); err != nil {
		t.Skipf("%s not installed", argv[0])
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdin = bytes.NewReader(data)
	out, err := cmd.Output()
	if ee, ok := err.(*exec.ExitError); ok && ee.ExitCode() == 99 {
		t.Skip("zopfli not installed")
	}
	if err != nil {
		t.Fatalf("%v: %v", argv, err)
	}
	return out
}

func roundTrip(t *testing.T, blob []byte) []byte {
	t.Helper()
	var form bytes.Buffer
	if err := Decode(context.Background(), &form, bytes.NewReader(blob)); err != nil {
		t.Fatal(err)
	}
	var content, back bytes.Buffer
	if err := Inflate(&content, bytes.NewReader(blob)); err != nil {
		t.Fatal(err)
	}
	if err := Encode(context.Background(), &back, bytes.NewReader(form.Bytes()), &content, EncodeOptions{MaxOutput: int64(len(blob))}); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(back.Bytes(), blob) {
		t.Fatalf("rebuilt %d bytes differ from the %d-byte blob", back.Len(), len(blob))
	}
	// The inline form: the content in the form itself.
	var inline, back2 bytes.Buffer
	if err := DecodeInline(context.Background(), &inline, bytes.NewReader(blob)); err != nil {
		t.Fatal(err)
	}
	if err := EncodeInline(context.Background(), &back2, bytes.NewReader(inline.Bytes()), EncodeOptions{MaxOutput: int64(len(blob))}); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(back2.Bytes(), blob) {
		t.Fatalf("inline form: rebuilt %d bytes differ from the %d-byte blob", back2.Len(), len(blob))
	}
	if err := EncodeInline(context.Background(), io.Discard, bytes.NewReader(form.Bytes()), EncodeOptions{MaxOutput: 1 << 30}); !errors.Is(err, errCorrupt) {
		t.Fatalf("a split form taken as inline: %v", err)
	}
	return form.Bytes()
}

// TestRoundTripReal: every real compressor's output is rebuilt bit for
// bit from its token form (headers, multi-member, trailing bytes too).
func TestRoundTripReal(t *testing.T) {
	data := sample()
	for _, argv := range realCompressors {
		t.Run(strings.Join(argv[:min(3, len(argv))], " "), func(t *testing.T) {
			blob := compressWith(t, argv, data)
			form := roundTrip(t, blob)
			t.Logf("blob %d bytes, token form %d bytes", len(blob), len(form))
		})
	}
}

func TestRoundTripGo(t *testing.T) {
	for _, lvl := range []int{gzip.HuffmanOnly, gzip.NoCompression, 1, 6, 9} {
		var b bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&b, lvl)
		zw.Name, zw.Comment, zw.Extra = "name.tar", "a comment", []byte{1, 2, 3, 4}
		zw.Write(sample())
		zw.Close()
		roundTrip(t, b.Bytes())
	}
	var empty bytes.Buffer
	zw := gzip.NewWriter(&empty)
	zw.Close()
	roundTrip(t, empty.Bytes())
}

func TestDecodeRefuses(t *testing.T) {
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	zw.Write(sample())
	zw.Close()
	g := b.Bytes()
	for name, blob := range map[string][]byte{
		"not gzip":   []byte("plain tar bytes"),
		"truncated":  g[:len(g)/2],
		"no trailer": g[:len(g)-3],
		"reserved":   append(append([]byte{}, g[:10]...), 0x07),
	} {
		if err := Decode(context.Background(), &bytes.Buffer{}, bytes.NewReader(blob)); !errors.Is(err, ErrNotGzip) {
			t.Errorf("%s: got %v, want ErrNotGzip", name, err)
		}
	}
}

func TestEncodeHostile(t *testing.T) {
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	zw.Write(sample())
	zw.Close()
	var form bytes.Buffer
	if err := Decode(context.Background(), &form, bytes.NewReader(b.Bytes())); err != nil {
		t.Fatal(err)
	}
	f := form.Bytes()
	cases := map[string][]byte{
		"empty":     nil,
		"magic":     []byte("DFHBLOB1"),
		"no end":    []byte(magic),
		"tag":       append([]byte(magic), 9),
		"truncated": f[:len(f)/2],
		"trailing":  append(append([]byte{}, f...), 1),
		"header":    append([]byte(magic), tagMember, 0xff, 0xff, 0xff, 0xff, 0x0f),
		"block":     append([]byte(magic), tagMember, 0, 0x09),
	}
	content := sample()
	for name, p := range cases {
		err := Encode(context.Background(), &bytes.Buffer{}, bytes.NewReader(p), bytes.NewReader(content), EncodeOptions{MaxOutput: 1 << 30})
		if !errors.Is(err, errCorrupt) || fault.KindOf(err, 0) != fault.Integrity {
			t.Errorf("%s: got %v, want a corrupt-form integrity error", name, err)
		}
	}
	if err := Encode(context.Background(), &bytes.Buffer{}, bytes.NewReader(f), bytes.NewReader(content), EncodeOptions{MaxOutput: int64(b.Len() - 1)}); !errors.Is(err, errCorrupt) {
		t.Errorf("output bound: got %v", err)
	}
	for name, c := range map[string][]byte{"short content": content[:len(content)-1], "long content": append(append([]byte{}, content...), 'x')} {
		if err := Encode(context.Background(), &bytes.Buffer{}, bytes.NewReader(f), bytes.NewReader(c), EncodeOptions{MaxOutput: 1 << 30}); !errors.Is(err, errCorrupt) {
			t.Errorf("%s: got %v, want a refusal", name, err)
		}
	}
}

// FuzzEncode: hostile token forms never panic, never write past
// MaxOutput, and every refusal is an integrity error.
func FuzzEncode(f *testing.F) {
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	zw.Write(sample()[:3000])
	zw.Close()
	var form bytes.Buffer
	Decode(context.Background(), &form, bytes.NewReader(b.Bytes()))
	f.Add(form.Bytes())
	f.Add([]byte(magic + "\x00\x00"))
	f.Fuzz(func(t *testing.T, p []byte) {
		var out bytes.Buffer
		const max = 1 << 16
		err := Encode(context.Background(), &out, bytes.NewReader(p), bytes.NewReader(sample()[:3000]), EncodeOptions{MaxOutput: max})
		if out.Len() > max {
			t.Fatalf("wrote %d bytes past %d", out.Len(), max)
		}
		if err != nil && fault.KindOf(err, 0) != fault.Integrity {
			t.Fatalf("non-integrity error: %v", err)
		}
		// The same bytes as an inline form (magic aside).
		if len(p) >= 8 {
			q := append([]byte(magicInline), p[8:]...)
			out.Reset()
			err := EncodeInline(context.Background(), &out, bytes.NewReader(q), EncodeOptions{MaxOutput: max})
			if out.Len() > max {
				t.Fatalf("inline: wrote %d bytes past %d", out.Len(), max)
			}
			if err != nil && fault.KindOf(err, 0) != fault.Integrity {
				t.Fatalf("inline: non-integrity error: %v", err)
			}
		}
	})
}

// FuzzDecode: arbitrary blobs never panic; what Decode accepts, Encode
// rebuilds exactly.
func FuzzDecode(f *testing.F) {
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	zw.Write(sample()[:3000])
	zw.Close()
	f.Add(b.Bytes())
	f.Fuzz(func(t *testing.T, blob []byte) {
		var form bytes.Buffer
		if err := Decode(context.Background(), &form, bytes.NewReader(blob)); err != nil {
			return
		}
		var content, back bytes.Buffer
		if err := Inflate(&content, bytes.NewReader(blob)); err != nil {
			return // a stream Decode can rewrite but whose content is bad (CRC, distance)
		}
		if err := Encode(context.Background(), &back, &form, &content, EncodeOptions{MaxOutput: int64(len(blob))}); err != nil {
			t.Fatalf("Encode refused Decode's form: %v", err)
		}
		if !bytes.Equal(back.Bytes(), blob) {
			t.Fatal("round trip differs")
		}
	})
}

var updateSeeds = flag.Bool("update-seeds", false, "rewrite testdata/fuzz from real compressors' output")

// TestFuzzSeeds keeps testdata/fuzz/{FuzzDecode,FuzzEncode} in step: a Go
// gzip blob, a multi-member one with a stored block, and their forms.
func TestFuzzSeeds(t *testing.T) {
	var blobs [][]byte
	for _, lvl := range []int{gzip.NoCompression, gzip.BestSpeed, gzip.BestCompression} {
		var b bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&b, lvl)
		zw.Name = "seed"
		zw.Write(sample()[:2000])
		zw.Close()
		blobs = append(blobs, b.Bytes())
	}
	blobs = append(blobs, append(append([]byte{}, blobs[0]...), blobs[1]...))
	for i, blob := range blobs {
		var form bytes.Buffer
		if err := Decode(context.Background(), &form, bytes.NewReader(blob)); err != nil {
			t.Fatal(err)
		}
		for dir, data := range map[string][]byte{"FuzzDecode": blob, "FuzzEncode": form.Bytes()} {
			path := filepath.Join("testdata", "fuzz", dir, fmt.Sprintf("seed-%d", i))
			want := fmt.Appendf(nil, "go test fuzz v1\n[]byte(%q)\n", data)
			if *updateSeeds {
				os.MkdirAll(filepath.Dir(path), 0o755)
				if err := os.WriteFile(path, want, 0o644); err != nil {
					t.Fatal(err)
				}
				continue
			}
			if got, err := os.ReadFile(path); err != nil || !bytes.Equal(got, want) {
				t.Fatalf("%s is stale or missing (go test ./deflatetok -run TestFuzzSeeds -update-seeds)", path)
			}
		}
	}
}
