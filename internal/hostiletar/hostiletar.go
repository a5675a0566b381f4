// Package hostiletar builds tar streams that archive/tar's writer refuses
// to produce, for tests of what diffah does with hostile layers: a PAX
// 1.0 sparse file whose holes make it claim far more bytes than the layer
// holds.
package hostiletar

import (
	"bytes"
	"fmt"
	"strconv"
)

// Sparse returns a complete tar holding one regular file, name, of
// realSize bytes: a hole followed by data at the very end (PAX sparse
// format 1.0, as GNU tar writes it). Readers expand the hole to zeros, so
// a layer of a few KiB yields realSize bytes of file content.
func Sparse(name string, realSize int64, data []byte) []byte {
	if int64(len(data)) > realSize {
		panic("hostiletar: data longer than the file")
	}
	sparseMap := fmt.Sprintf("1\n%d\n%d\n", realSize-int64(len(data)), len(data))
	body := pad([]byte(sparseMap))
	body = append(body, data...)
	var recs bytes.Buffer
	for _, kv := range [][2]string{
		{"GNU.sparse.major", "1"}, {"GNU.sparse.minor", "0"},
		{"GNU.sparse.name", name}, {"GNU.sparse.realsize", strconv.FormatInt(realSize, 10)},
	} {
		recs.WriteString(record(kv[0], kv[1]))
	}
	var out bytes.Buffer
	out.Write(header("PaxHeaders/"+name, 'x', int64(recs.Len())))
	out.Write(pad(recs.Bytes()))
	out.Write(header("GNUSparseFile.0/"+name, '0', int64(len(body))))
	out.Write(pad(body))
	out.Write(make([]byte, 1024)) // end of archive
	return out.Bytes()
}

// record is one PAX record, "LEN key=value\n", LEN counting itself.
func record(k, v string) string {
	n := len(k) + len(v) + 3
	for {
		s := fmt.Sprintf("%d %s=%s\n", n, k, v)
		if len(s) == n {
			return s
		}
		n = len(s)
	}
}

// header is a ustar header block.
func header(name string, typ byte, size int64) []byte {
	h := make([]byte, 512)
	copy(h[0:100], name)
	copy(h[100:108], "0000644\x00")
	copy(h[108:116], "0000000\x00")
	copy(h[116:124], "0000000\x00")
	copy(h[124:136], fmt.Sprintf("%011o\x00", size))
	copy(h[136:148], fmt.Sprintf("%011o\x00", 0))
	h[156] = typ
	copy(h[257:263], "ustar\x00")
	copy(h[263:265], "00")
	copy(h[148:156], "        ")
	var sum int
	for _, c := range h {
		sum += int(c)
	}
	copy(h[148:156], fmt.Sprintf("%06o\x00 ", sum))
	return h
}

func pad(b []byte) []byte {
	if r := len(b) % 512; r != 0 {
		b = append(b, make([]byte, 512-r)...)
	}
	return b
}
