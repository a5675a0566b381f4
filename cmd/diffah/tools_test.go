package main

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/rogpeppe/go-internal/testscript"
)

// scriptCmds are test-only commands for crafting broken and hostile
// archives in scripts.
var scriptCmds = map[string]func(ts *testscript.TestScript, neg bool, args []string){
	"truncate":   cmdTruncate,
	"flipbit":    cmdFlipbit,
	"tarx":       cmdTarx,
	"pty":        cmdPty,
	"sethistory": cmdSetHistory,
	"gzipimage":  cmdGzipImage,
}

// truncate FILE N: keep the first N bytes (N < 0: drop -N bytes from the end).
func cmdTruncate(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 2 {
		ts.Fatalf("usage: truncate FILE N")
	}
	path := ts.MkAbs(args[0])
	data, err := os.ReadFile(path)
	ts.Check(err)
	n := offset(ts, args[1], len(data))
	ts.Check(os.WriteFile(path, data[:n], 0o644))
}

// flipbit FILE OFFSET: flip the lowest bit of the byte at OFFSET (< 0: from the end).
func cmdFlipbit(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 2 {
		ts.Fatalf("usage: flipbit FILE OFFSET")
	}
	path := ts.MkAbs(args[0])
	data, err := os.ReadFile(path)
	ts.Check(err)
	n := offset(ts, args[1], len(data))
	data[n] ^= 1
	ts.Check(os.WriteFile(path, data, 0o644))
}

func offset(ts *testscript.TestScript, s string, size int) int {
	n, err := strconv.Atoi(s)
	ts.Check(err)
	if n < 0 {
		n += size
	}
	if n < 0 || n > size {
		ts.Fatalf("offset %s out of range for %d bytes", s, size)
	}
	return n
}

// tarx list IN | tarx cat IN NAME | tarx offset IN NAME | tarx flip IN NAME|last K | tarx rewrite IN OUT OP...
//
// NAME may be @N, the N-th entry. OPs: drop=NAME dup=NAME swap=I,J replace=NAME:FILE add=NAME:FILE
// symlink=NAME:TARGET hardlink=NAME:TARGET dir=NAME fifo=NAME
// rename=OLD:NEW. Entry order is kept; add appends.
func cmdTarx(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) < 2 {
		ts.Fatalf("usage: tarx list|offset|rewrite ...")
	}
	type ent struct {
		hdr  *tar.Header
		data []byte
		off  int64
	}
	read := func(path string) []ent {
		data, err := os.ReadFile(ts.MkAbs(path))
		ts.Check(err)
		cr := &countingReader{r: bytes.NewReader(data)}
		tr := tar.NewReader(cr)
		var out []ent
		for {
			h, err := tr.Next()
			if err == io.EOF {
				return out
			}
			ts.Check(err)
			off := cr.n
			b, err := io.ReadAll(tr)
			ts.Check(err)
			out = append(out, ent{h, b, off})
		}
	}
	switch args[0] {
	case "list":
		for _, e := range read(args[1]) {
			fmt.Fprintf(ts.Stdout(), "%s %d\n", e.hdr.Name, len(e.data))
		}
	case "cat":
		for _, e := range read(args[1]) {
			if e.hdr.Name == args[2] {
				ts.Stdout().Write(e.data)
				return
			}
		}
		ts.Fatalf("no entry %s", args[2])
	case "flip":
		// tarx flip FILE NAME K: flip a bit in byte K of entry NAME's data.
		path := ts.MkAbs(args[1])
		ents := read(args[1])
		i := len(ents) - 1
		if args[2] != "last" {
			for i = range ents {
				if ents[i].hdr.Name == args[2] {
					break
				}
			}
		}
		k, err := strconv.Atoi(args[3])
		ts.Check(err)
		data, err := os.ReadFile(path)
		ts.Check(err)
		data[ents[i].off+int64(k)] ^= 1
		ts.Check(os.WriteFile(path, data, 0o644))
	case "offset":
		// The byte offset of entry NAME's data: where flipbit hits content.
		for _, e := range read(args[1]) {
			if e.hdr.Name == args[2] {
				fmt.Fprintf(ts.Stdout(), "%d\n", e.off)
				return
			}
		}
		ts.Fatalf("no entry %s", args[2])
	case "rewrite":
		ents := read(args[1])
		for _, op := range args[3:] {
			k, v, _ := strings.Cut(op, "=")
			a, b, _ := strings.Cut(v, ":")
			find := func(name string) int {
				if n, err := strconv.Atoi(strings.TrimPrefix(name, "@")); err == nil && strings.HasPrefix(name, "@") {
					return n
				}
				for i, e := range ents {
					if e.hdr.Name == name {
						return i
					}
				}
				ts.Fatalf("no entry %s", name)
				return -1
			}
			file := func(p string) []byte {
				d, err := os.ReadFile(ts.MkAbs(p))
				ts.Check(err)
				return d
			}
			switch k {
			case "drop":
				i := find(v)
				ents = append(ents[:i], ents[i+1:]...)
			case "dup":
				i := find(v)
				ents = append(ents[:i+1], ents[i:]...)
			case "swap":
				x, y, _ := strings.Cut(v, ",")
				i, err1 := strconv.Atoi(x)
				j, err2 := strconv.Atoi(y)
				if err1 != nil || err2 != nil {
					ts.Fatalf("swap=I,J: %s", v)
				}
				ents[i], ents[j] = ents[j], ents[i]
			case "replace":
				i := find(a)
				h := *ents[i].hdr
				ents[i] = ent{hdr: &h, data: file(b)}
			case "rename":
				ents[find(a)].hdr.Name = b
			case "add":
				ents = append(ents, ent{hdr: &tar.Header{Name: a, Typeflag: tar.TypeReg, Mode: 0o644}, data: file(b)})
			case "symlink", "hardlink":
				t := byte(tar.TypeSymlink)
				if k == "hardlink" {
					t = tar.TypeLink
				}
				ents = append(ents, ent{hdr: &tar.Header{Name: a, Typeflag: t, Linkname: b, Mode: 0o777}})
			case "dir":
				ents = append(ents, ent{hdr: &tar.Header{Name: v, Typeflag: tar.TypeDir, Mode: 0o755}})
			case "fifo":
				ents = append(ents, ent{hdr: &tar.Header{Name: v, Typeflag: tar.TypeFifo, Mode: 0o644}})
			case "chardev":
				ents = append(ents, ent{hdr: &tar.Header{Name: v, Typeflag: tar.TypeChar, Mode: 0o644, Devmajor: 1, Devminor: 3}})
			default:
				ts.Fatalf("unknown op %s", op)
			}
		}
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		for _, e := range ents {
			h := *e.hdr
			h.Size = int64(len(e.data))
			if h.Typeflag != tar.TypeReg {
				h.Size = 0
			}
			ts.Check(tw.WriteHeader(&h))
			_, err := tw.Write(e.data)
			ts.Check(err)
		}
		ts.Check(tw.Close())
		ts.Check(os.WriteFile(ts.MkAbs(args[2]), buf.Bytes(), 0o644))
	default:
		ts.Fatalf("unknown tarx command %s", args[0])
	}
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}
