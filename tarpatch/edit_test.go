package tarpatch

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/binary"
	"strings"
	"testing"

	"github.com/diffah/diffah/fault"
)

// editRoundTrip encodes newTar in the edit form against sources and
// checks that it decodes back.
func editRoundTrip(t *testing.T, newTar []byte, sources [][]byte) []byte {
	t.Helper()
	var ss []Source
	for _, s := range sources {
		ss = append(ss, src(s))
	}
	p, err := encodeEdit(newTar, ss, 0)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := Decode(context.Background(), &out, bytes.NewReader(p), ss, DecodeOptions{MaxOutput: int64(len(newTar))}); err != nil {
		t.Fatalf("edit form: %v", err)
	}
	if !bytes.Equal(out.Bytes(), newTar) {
		t.Fatalf("edit form: round trip differs: got %d bytes, want %d", out.Len(), len(newTar))
	}
	return p
}

// editOps returns an edit-form patch's op list and frame.
func editOps(t *testing.T, p []byte) (ops, frame []byte) {
	t.Helper()
	if !bytes.HasPrefix(p, editMagic) {
		t.Fatalf("not an edit-form patch: %q", p[:min(8, len(p))])
	}
	r := bytes.NewReader(p[len(editMagic):])
	n, err := binary.ReadUvarint(r)
	if err != nil {
		t.Fatal(err)
	}
	at := len(p) - r.Len()
	return p[at : at+int(n)], p[at+int(n):]
}

// expressLike is a release bump of a small npm package: a changelog that
// grows at its head, a few changed lines, and version numbers.
func expressLike(t testing.TB) (old, newTar []byte) {
	hist := textData(40, 100<<10)
	lib := textData(41, 14<<10)
	route := textData(42, 4<<10)
	pkg := []byte(`{"name":"express","version":"4.18.1","dependencies":{"body-parser":"1.20.0","qs":"6.10.3"}}` + "\n")
	mk := func(hist, route, pkg []byte) []byte {
		return mktar(t, []entry{
			{name: "app/", typ: tar.TypeDir},
			{name: "app/History.md", body: hist},
			{name: "app/lib/application.js", body: lib},
			{name: "app/lib/router/route.js", body: route},
			{name: "app/lib/utils.js", body: lib[:5000]},
			{name: "app/package.json", body: pkg},
		}, nil)
	}
	newHist := append([]byte("4.18.2 / 2022-10-08\n===\n\n  * Fix regression routing a large stack in a single route\n  * deps: body-parser@1.20.1\n\n"), hist...)
	newRoute := append(append(append([]byte{}, route[:2000]...), "    if (!layer) {\n      return done(err)\n    }\n"...), route[2100:]...)
	newPkg := bytes.ReplaceAll(bytes.ReplaceAll(pkg, []byte("4.18.1"), []byte("4.18.2")), []byte("1.20.0"), []byte("1.20.1"))
	return mk(hist, route, pkg), mk(newHist, newRoute, newPkg)
}

// TestEditForm: a release bump of a small package travels as an edit of
// the old entries: copies of the unchanged ones, the changed ones' headers
// rebuilt from their size change, and one frame of what changed; Encode
// keeps it, smaller than the whole form.
func TestEditForm(t *testing.T) {
	old, newTar := expressLike(t)
	p := editRoundTrip(t, newTar, [][]byte{old})
	ops, _ := editOps(t, p)
	var kinds []byte
	r := bytes.NewReader(ops)
	for {
		k, err := r.ReadByte()
		if err != nil {
			t.Fatalf("op list %x ends without END", ops)
		}
		kinds = append(kinds, k)
		if k == eopEnd {
			break
		}
		if k == eopRaw {
			binary.ReadUvarint(r)
			continue
		}
		binary.ReadVarint(r)
		if k == eopCopy {
			binary.ReadUvarint(r)
		} else {
			binary.ReadVarint(r)
		}
	}
	// dir: copy; History.md, route.js: edited; application.js, utils.js:
	// one copy; package.json: edited (same size).
	want := []byte{eopCopy, eopEdit, eopCopy, eopEdit, eopCopy, eopEdit, eopEnd}
	if !bytes.Equal(kinds, want) {
		t.Errorf("ops %v, want %v", kinds, want)
	}
	whole, err := encodeWhole(newTar, []Source{src(old)}, 0)
	if err != nil {
		t.Fatal(err)
	}
	st, best := roundTrip(t, newTar, [][]byte{old}, EncodeOptions{})
	if !bytes.Equal(best, p) || len(p) >= len(whole) || !st.Whole {
		t.Errorf("Encode kept %d bytes (whole %v); edit form %d, whole form %d", len(best), st.Whole, len(p), len(whole))
	}
	// Format 3 (diffah-tar/3) has no edit form.
	if _, p3 := roundTrip(t, newTar, [][]byte{old}, EncodeOptions{Format: 3}); bytes.HasPrefix(p3, editMagic) {
		t.Error("format 3 wrote the edit form")
	}
}

// TestEditFormEntries: entries the size rule cannot rebuild (another
// mode, PAX and GNU long names, links, renamed and new files, junk
// padding and trailers, several sources, no tar at all) still round-trip.
func TestEditFormEntries(t *testing.T) {
	js := textData(50, 30<<10)
	long := strings.Repeat("deep/", 30) + "x.js"
	old := mktar(t, []entry{
		{name: "a/", typ: tar.TypeDir},
		{name: "a/lib-1.2.3.js", body: js},
		{name: long, body: js[:9000], format: tar.FormatPAX},
		{name: "a/gone", body: []byte("gone")},
		{name: "a/same", body: []byte("same")},
	}, nil)
	other := mktar(t, []entry{{name: "b/gnu-" + long, body: js[100:5000], format: tar.FormatGNU}}, []byte("junk"))
	edited := mutate(js, 3, 4)
	cases := map[string][]byte{
		"empty": mktar(t, nil, nil),
		"mixed": mktar(t, []entry{
			{name: "a/", typ: tar.TypeDir},
			{name: "a/same", body: []byte("same")},
			{name: "a/lib-1.2.4.js", body: edited},
			{name: long, body: append([]byte("x"), js[:9000]...), format: tar.FormatPAX},
			{name: "b/gnu-" + long, body: js[100:5100], format: tar.FormatGNU},
			{name: "a/new", body: textData(51, 3000)},
			{name: "a/link", typ: tar.TypeSymlink, link: "same"},
		}, []byte("trailing junk")),
		"not a tar": rnd(52, 3000),
		"cut":       mktar(t, []entry{{name: "a/lib-1.2.3.js", body: edited}}, nil)[:20000],
	}
	// A header that differs in more than its size (the mode) travels
	// whole (EDITH); padding that is not zeros makes the entry RAW.
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	tw.WriteHeader(&tar.Header{Name: "a/lib-1.2.3.js", Mode: 0o755, Size: int64(len(edited)), Typeflag: tar.TypeReg, Format: tar.FormatUSTAR})
	tw.Write(edited)
	tw.Flush()
	padded := append([]byte{}, b.Bytes()...)
	padded[len(padded)-1] = 'p'
	cases["mode"] = append(b.Bytes(), make([]byte, 1024)...)
	cases["padding"] = append(padded, make([]byte, 1024)...)
	for name, nt := range cases {
		t.Run(name, func(t *testing.T) {
			p := editRoundTrip(t, nt, [][]byte{old, other})
			if name == "mode" {
				if ops, _ := editOps(t, p); ops[0] != eopEditH {
					t.Errorf("ops %x: want EDITH first", ops)
				}
			}
			if name == "padding" {
				if ops, _ := editOps(t, p); ops[0] != eopRaw {
					t.Errorf("ops %x: want RAW first", ops)
				}
			}
		})
	}
}

// TestEditDecodeHostile: edit-form patches that lie are refused with an
// integrity error, within their bounds, never with a panic.
func TestEditDecodeHostile(t *testing.T) {
	old, newTar := expressLike(t)
	ss := []Source{src(old)}
	good := editRoundTrip(t, newTar, [][]byte{old})
	ops, frame := editOps(t, good)
	mk := func(ops []byte, frame []byte) []byte {
		p := append([]byte{}, editMagic...)
		p = binary.AppendUvarint(p, uint64(len(ops)))
		return append(append(p, ops...), frame...)
	}
	end := []byte{eopEnd, 0, 0}
	cases := map[string][]byte{
		"jump past the entries":  mk(append([]byte{eopCopy, 100, 1}, end...), nil),
		"jump before the first":  mk(append([]byte{eopCopy, 1, 1}, end...), nil),
		"copy too many":          mk(append([]byte{eopCopy, 0, 50}, end...), nil),
		"copy none":              mk(append([]byte{eopCopy, 0, 0}, end...), nil),
		"negative size":          mk(append([]byte{eopEdit, 0, 0x7f}, end...), nil),
		"size past the output":   mk(append([]byte{eopEdit, 2, 0xfe, 0xff, 0xff, 0xff, 0x0f}, end...), nil),
		"raw past the output":    mk(append([]byte{eopRaw, 0xff, 0xff, 0xff, 0x0f}, end...), nil),
		"zeros past the output":  mk([]byte{eopEnd, 0xff, 0xff, 0xff, 0x0f, 0}, nil),
		"unknown op":             mk([]byte{9}, nil),
		"no END":                 mk([]byte{eopCopy, 0, 1}, nil),
		"ops longer than said":   append(mk(end, nil)[:len(editMagic)], append([]byte{9}, end...)...),
		"ops after END":          mk(append(append([]byte{}, end...), eopCopy, 0, 1), nil),
		"op list length too big": append(append([]byte{}, editMagic...), 0xff, 0xff, 0xff, 0xff, 0x0f),
		"frame cut short":        mk(ops, frame[:len(frame)/2]),
		"no frame":               mk(ops, nil),
		"data after the frame":   append(append([]byte{}, good...), 0),
		"frame says more":        mk(append(append([]byte{}, ops[:len(ops)-3]...), eopEnd, 0, 0), frame),
	}
	for name, p := range cases {
		t.Run(name, func(t *testing.T) {
			var out bytes.Buffer
			err := Decode(context.Background(), &out, bytes.NewReader(p), ss, DecodeOptions{MaxOutput: int64(len(newTar))})
			if err == nil || fault.KindOf(err, 0) != fault.Integrity {
				t.Fatalf("got %v, want an integrity error", err)
			}
			if out.Len() > len(newTar) {
				t.Fatalf("wrote %d bytes past MaxOutput", out.Len())
			}
		})
	}
	// Sources over SmallLayer are not read whole.
	big := memSource{bytes.NewReader(make([]byte, SmallLayer+1))}
	if err := Decode(context.Background(), &bytes.Buffer{}, bytes.NewReader(good), []Source{big}, DecodeOptions{MaxOutput: 1 << 20}); err == nil || fault.KindOf(err, 0) != fault.Integrity {
		t.Fatalf("large source: %v", err)
	}
}

// FuzzDecodeEdit: edit-form patches against a source of several entries
// (FuzzDecode's has one) never panic and never write past MaxOutput.
func FuzzDecodeEdit(f *testing.F) {
	old, newTar := expressLike(f)
	ss := []Source{src(old)}
	p, err := encodeEdit(newTar, ss, 0)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(p)
	f.Add(p[:len(p)/2])
	if p, err = encodeEdit(old, ss, 0); err != nil {
		f.Fatal(err)
	}
	f.Add(p)
	f.Fuzz(func(t *testing.T, p []byte) {
		var out bytes.Buffer
		Decode(context.Background(), &out, bytes.NewReader(p), ss, DecodeOptions{MaxOutput: 1 << 20})
		if out.Len() > 1<<20 {
			t.Fatalf("wrote %d bytes past MaxOutput", out.Len())
		}
	})
}
