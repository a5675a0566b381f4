package resolve

import (
	"bufio"
	"io"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	kgzip "github.com/klauspost/compress/gzip"

	"github.com/diffah/diffah/imgref"
	"github.com/diffah/diffah/recompress"
)

// inflated is a baseline layer whose content is read with klauspost's
// inflater, about 1.6x the speed of compress/gzip's (measured on the
// Debian layer of the corpus): a patch source is spooled whole before
// its patch decodes, one serial pass, so on a large layer it is a good
// part of the import. The spool checks the content against its diffID,
// whoever inflated it. Only for stores whose compressed blob is stored
// as it is (an OCI layout, a registry): elsewhere (a docker-archive, a
// daemon) Compressed may have to compress the layer first.
type inflated struct{ v1.Layer }

func fastSource(base *Baseline, l v1.Layer) v1.Layer {
	if r, err := imgref.Parse(base.Ref); err == nil && (r.Transport == imgref.OCI || r.Transport == imgref.Docker) {
		return inflated{l}
	}
	return l
}

func (l inflated) Uncompressed() (io.ReadCloser, error) {
	rc, err := l.Compressed()
	if err != nil {
		return l.Layer.Uncompressed()
	}
	br := bufio.NewReaderSize(rc, 1<<20)
	if magic, _ := br.Peek(4); !recompress.IsGzip(magic) {
		rc.Close()
		return l.Layer.Uncompressed()
	}
	zr, err := kgzip.NewReader(br)
	if err != nil {
		rc.Close()
		return l.Layer.Uncompressed()
	}
	return newReadAhead(zr, rc), nil
}

// readAhead inflates on its own goroutine, a few chunks ahead, so that
// the spool's write and sha256 overlap the inflating (about a fifth of
// the spooling time of a large layer).
type readAhead struct {
	chunks chan []byte
	free   chan []byte
	stop   chan struct{}
	done   chan struct{}
	cur    []byte
	buf    []byte
	err    error // set before chunks is closed
	blob   io.Closer
}

const (
	aheadChunk  = 1 << 20
	aheadChunks = 3
)

func newReadAhead(zr *kgzip.Reader, blob io.Closer) *readAhead {
	r := &readAhead{chunks: make(chan []byte, aheadChunks), free: make(chan []byte, aheadChunks+1), stop: make(chan struct{}), done: make(chan struct{}), blob: blob}
	for i := 0; i < aheadChunks+1; i++ {
		r.free <- make([]byte, aheadChunk)
	}
	go func() {
		defer close(r.done)
		defer close(r.chunks)
		for {
			var b []byte
			select {
			case b = <-r.free:
			case <-r.stop:
				return
			}
			n, err := 0, error(nil)
			for n < len(b) && err == nil {
				var k int
				k, err = zr.Read(b[n:])
				n += k
			}
			if n > 0 {
				select {
				case r.chunks <- b[:n]:
				case <-r.stop:
					return
				}
			}
			if err != nil {
				if err != io.EOF {
					r.err = err
				}
				return
			}
		}
	}()
	return r
}

func (r *readAhead) Read(p []byte) (int, error) {
	for len(r.cur) == 0 {
		if r.buf != nil {
			r.free <- r.buf[:cap(r.buf)]
			r.buf = nil
		}
		b, ok := <-r.chunks
		if !ok {
			if r.err != nil {
				return 0, r.err
			}
			return 0, io.EOF
		}
		r.cur, r.buf = b, b
	}
	n := copy(p, r.cur)
	r.cur = r.cur[n:]
	return n, nil
}

func (r *readAhead) Close() error {
	close(r.stop)
	<-r.done
	return r.blob.Close()
}
