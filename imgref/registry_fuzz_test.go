package imgref

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/diffah/diffah/fault"
)

// fuzzRegistry serves, per repository, the documents a fuzz input gives:
// the tag's manifest (or index), whatever is asked for by digest, and
// every blob.
type fuzzRegistry struct {
	mu   sync.Mutex
	docs map[string][3][]byte
}

func (f *fuzzRegistry) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	parts := strings.Split(strings.TrimPrefix(r.URL.Path, "/v2/"), "/")
	if len(parts) < 3 {
		return // the API root: 200
	}
	f.mu.Lock()
	d := f.docs[parts[0]]
	f.mu.Unlock()
	var body []byte
	switch {
	case parts[1] == "manifests" && !strings.HasPrefix(parts[2], "sha256:"):
		body = d[0]
	case parts[1] == "manifests":
		body = d[1]
	default:
		body = d[2]
	}
	w.Header().Set("Content-Length", fmt.Sprint(len(body)))
	w.Write(body)
}

// FuzzOpenRemote feeds arbitrary manifests, indexes and blobs from a
// loopback registry to Open: no panic, every error tagged with a
// category, and what opens reads back verified.
func FuzzOpenRemote(f *testing.F) {
	fx := fixture(f, "", "linux/amd64", "fz", "gzip")
	img := fx.image(f)
	raw, _ := img.RawManifest()
	cfg, _ := img.RawConfigFile()
	f.Add(raw, []byte{}, cfg)
	f.Add([]byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:`+strings.Repeat("0", 64)+`","size":2,"platform":{"os":"linux","architecture":"amd64"}}]}`), []byte("{}"), []byte("{}"))
	f.Add([]byte(`{"schemaVersion":2,"config":{"digest":"sha256:`+strings.Repeat("a", 64)+`","size":9223372036854775807},"layers":[]}`), []byte{}, []byte{})
	reg := &fuzzRegistry{docs: map[string][3][]byte{}}
	srv := httptest.NewServer(reg)
	f.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "http://")
	var n atomic.Int64
	f.Fuzz(func(t *testing.T, top, byDigest, blob []byte) {
		repo := fmt.Sprintf("r%d", n.Add(1))
		reg.mu.Lock()
		reg.docs[repo] = [3][]byte{top, byDigest, blob}
		reg.mu.Unlock()
		defer func() { reg.mu.Lock(); delete(reg.docs, repo); reg.mu.Unlock() }()
		img, err := Open(context.Background(), Ref{Transport: Docker, Path: host + "/" + repo + ":t"}, Options{Platform: "linux/amd64", RetryTimes: -1})
		if err != nil {
			if fault.KindOf(err, 0) == 0 {
				t.Fatalf("untagged error: %v", err)
			}
			return
		}
		defer img.Close()
		if layers, err := img.Layers(); err == nil {
			for _, l := range layers {
				if rc, err := l.Compressed(); err == nil {
					io.Copy(io.Discard, rc)
					rc.Close()
				}
			}
		}
	})
}
