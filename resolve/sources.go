package resolve

import (
	"bufio"
	"io"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	kgzip "github.com/klauspost/compress/gzip"

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
	if strings.HasPrefix(base.Ref, "oci:") || strings.HasPrefix(base.Ref, "docker://") {
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
	return inflatedReader{zr, rc}, nil
}

type inflatedReader struct {
	*kgzip.Reader
	blob io.Closer
}

func (r inflatedReader) Close() error {
	r.Reader.Close()
	return r.blob.Close()
}
