// Package fakeregistry is a registry that misbehaves on purpose, for
// tests: it stalls, loops, fails, refuses and lies in the ways a real
// registry (or what sits in front of one) can, so that each failure class
// can be shown to end in a clear error instead of a hang, a blown memory
// budget or an exit 0 over a broken image. The honest parts are served by
// go-containerregistry's in-memory registry; the server listens on
// loopback only. Where a real registry can do the job (the honest paths),
// tests use internal/testregistry instead.
package fakeregistry

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/google/go-containerregistry/pkg/registry"
)

// Mode is how the registry misbehaves.
type Mode int

const (
	// Honest serves every request as a registry should.
	Honest Mode = iota
	// Silent accepts each request and never answers.
	Silent
	// StallBlob sends the headers and half of every blob, then nothing.
	StallBlob
	// StallManifest sends the headers and half of every manifest, then
	// nothing.
	StallManifest
	// StallCommit reads the final request of every blob upload and
	// never answers it.
	StallCommit
	// RedirectLoop answers every request with a redirect to itself.
	RedirectLoop
	// Error5xx answers every request 503.
	Error5xx
	// Error5xxUpload answers every blob upload request 503.
	Error5xxUpload
	// Unauthorized answers every request 401 with a Basic challenge.
	Unauthorized
	// UnauthorizedBearer hands out tokens at /token, and answers every
	// other request 401 with a Bearer challenge, whatever token comes.
	UnauthorizedBearer
	// WrongBlob serves every blob over 1 KiB (layers and archives, not
	// configs) with one byte changed (same length): byte 100, inside the
	// first tar header of an archive, so that even a reader of the head
	// alone (inspect) meets the damage.
	WrongBlob
	// ShortBlob serves every blob over 1 KiB without its last byte, with
	// a Content-Length that says so.
	ShortBlob
	// WrongManifest serves manifests asked for by digest with one byte
	// changed.
	WrongManifest
	// LoseUpload acknowledges blob uploads (and mounts) without storing
	// anything. Like StallCommit and AlterUpload, it also answers HEAD
	// (does the blob exist?) with 404 for every blob it holds, so that
	// every blob of a push is uploaded or mounted.
	LoseUpload
	// AlterUpload acknowledges blob uploads but stores other bytes (one
	// byte changed), and reports those honestly on HEAD.
	AlterUpload
	// AlterManifest stores every pushed manifest with a newline added
	// (still valid JSON, another digest).
	AlterManifest
)

// Special tags, served in every mode, whatever the repository.
const (
	// HugeManifestTag serves a manifest of HugeSize bytes, generated as
	// it streams (no Content-Length).
	HugeManifestTag = "huge-manifest"
	// HugeConfigTag serves a small manifest whose config descriptor
	// declares HugeSize bytes; the config blob streams that many.
	HugeConfigTag = "huge-config"
	// LyingConfigTag serves a manifest whose config descriptor says 2
	// bytes, while the blob streams HugeSize bytes without a length.
	LyingConfigTag = "lying-config"
	// HugeSize is the size of the huge documents (1 GiB).
	HugeSize = 1 << 30
)

// hugeConfigDigest names the generated config blob (any valid digest).
var hugeConfigDigest = "sha256:" + strings.Repeat("ab", 32)

// Server is a running fake registry.
type Server struct {
	// Host is "127.0.0.1:PORT".
	Host  string
	srv   *httptest.Server
	inner http.Handler
	mode  atomic.Int64
	quit  chan struct{}

	// Requests counts every request received.
	Requests atomic.Int64
	mu       sync.Mutex
	uploads  map[string]*bytes.Buffer // LoseUpload/AlterUpload sessions
	altered  map[string][]byte        // digest -> what AlterUpload stored
	nextID   int
}

// Start runs a fake registry on loopback until the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	s := &Server{inner: registry.New(registry.Logger(nopLogger())), quit: make(chan struct{}),
		uploads: map[string]*bytes.Buffer{}, altered: map[string][]byte{}}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	s.Host = strings.TrimPrefix(s.srv.URL, "http://")
	t.Cleanup(func() {
		close(s.quit)
		s.srv.CloseClientConnections()
		s.srv.Close()
	})
	return s
}

// SetMode changes how the registry behaves from the next request on, and
// resets the request count.
func (s *Server) SetMode(m Mode) {
	s.mode.Store(int64(m))
	s.Requests.Store(0)
}

func (s *Server) block(r *http.Request) {
	select {
	case <-r.Context().Done():
	case <-s.quit:
	}
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	s.Requests.Add(1)
	if os.Getenv("FAKEREGISTRY_LOG") != "" {
		fmt.Fprintln(os.Stderr, "fakeregistry:", Mode(s.mode.Load()), r.Method, r.URL)
	}
	if s.special(w, r) {
		return
	}
	isBlob := strings.Contains(r.URL.Path, "/blobs/sha256:")
	isManifest := strings.Contains(r.URL.Path, "/manifests/")
	isUpload := strings.Contains(r.URL.Path, "/blobs/uploads/")
	switch Mode(s.mode.Load()) {
	case Silent:
		s.block(r)
		return
	case RedirectLoop:
		http.Redirect(w, r, r.URL.String(), http.StatusTemporaryRedirect)
		return
	case Error5xx:
		http.Error(w, `{"errors":[{"code":"UNAVAILABLE","message":"try later"}]}`, http.StatusServiceUnavailable)
		return
	case UnauthorizedBearer:
		if r.URL.Path == "/token" {
			io.WriteString(w, `{"token":"t","access_token":"t"}`)
			return
		}
		w.Header().Set("WWW-Authenticate", `Bearer realm="http://`+r.Host+`/token",service="fake"`)
		http.Error(w, `{"errors":[{"code":"UNAUTHORIZED","message":"no"}]}`, http.StatusUnauthorized)
		return
	case Error5xxUpload:
		if isBlob && r.Method == http.MethodHead {
			http.Error(w, "", http.StatusNotFound)
			return
		}
		if isUpload {
			http.Error(w, `{"errors":[{"code":"UNAVAILABLE","message":"try later"}]}`, http.StatusServiceUnavailable)
			return
		}
	case Unauthorized:
		w.Header().Set("WWW-Authenticate", `Basic realm="fake"`)
		http.Error(w, `{"errors":[{"code":"UNAUTHORIZED","message":"no"}]}`, http.StatusUnauthorized)
		return
	case StallBlob:
		if isBlob && r.Method == http.MethodGet {
			s.halfThenStall(w, r)
			return
		}
	case StallManifest:
		if isManifest && r.Method == http.MethodGet {
			s.halfThenStall(w, r)
			return
		}
	case StallCommit:
		if isBlob && r.Method == http.MethodHead {
			http.Error(w, "", http.StatusNotFound)
			return
		}
		if isUpload && r.Method == http.MethodPut {
			io.Copy(io.Discard, r.Body)
			s.block(r)
			return
		}
	case WrongBlob, ShortBlob:
		if isBlob && r.Method == http.MethodGet {
			rec := s.record(r)
			b := rec.Body.Bytes()
			if len(b) > 1<<10 && rec.Code == http.StatusOK {
				if Mode(s.mode.Load()) == WrongBlob {
					b[100] ^= 0xff
				} else {
					b = b[:len(b)-1]
				}
			}
			writeRecorded(w, rec, b)
			return
		}
	case WrongManifest:
		if isManifest && r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/manifests/sha256:") {
			rec := s.record(r)
			b := rec.Body.Bytes()
			if i := bytes.LastIndexByte(b, '}'); i > 0 && rec.Code == http.StatusOK {
				b[i-1] ^= 0x01 // still the same length
			}
			writeRecorded(w, rec, b)
			return
		}
	case AlterManifest:
		if isManifest && r.Method == http.MethodPut {
			b, _ := io.ReadAll(r.Body)
			r2 := r.Clone(r.Context())
			b = append(b, '\n')
			r2.Body = io.NopCloser(bytes.NewReader(b))
			r2.ContentLength = int64(len(b))
			s.inner.ServeHTTP(w, r2)
			return
		}
	case LoseUpload, AlterUpload:
		if s.lyingUpload(w, r) {
			return
		}
	}
	s.inner.ServeHTTP(w, r)
}

// record runs r against the honest registry and returns its answer.
func (s *Server) record(r *http.Request) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	s.inner.ServeHTTP(rec, r)
	return rec
}

func writeRecorded(w http.ResponseWriter, rec *httptest.ResponseRecorder, body []byte) {
	for k, v := range rec.Header() {
		w.Header()[k] = v
	}
	w.Header().Set("Content-Length", fmt.Sprint(len(body)))
	w.WriteHeader(rec.Code)
	w.Write(body)
}

func (s *Server) halfThenStall(w http.ResponseWriter, r *http.Request) {
	rec := s.record(r)
	for k, v := range rec.Header() {
		w.Header()[k] = v
	}
	w.WriteHeader(rec.Code)
	b := rec.Body.Bytes()
	w.Write(b[:len(b)/2])
	w.(http.Flusher).Flush()
	s.block(r)
}

// lyingUpload takes over blob uploads for LoseUpload and AlterUpload.
func (s *Server) lyingUpload(w http.ResponseWriter, r *http.Request) bool {
	p := r.URL.Path
	repo := ""
	if i := strings.Index(p, "/blobs/"); strings.HasPrefix(p, "/v2/") && i > 0 {
		repo = p[len("/v2/"):i]
	}
	switch {
	case repo == "":
		return false
	case strings.HasSuffix(p, "/blobs/uploads/") && r.Method == http.MethodPost:
		if d := r.URL.Query().Get("mount"); d != "" && Mode(s.mode.Load()) == LoseUpload {
			w.Header().Set("Docker-Content-Digest", d)
			w.WriteHeader(http.StatusCreated)
			return true
		}
		s.mu.Lock()
		s.nextID++
		id := fmt.Sprintf("fake-%d", s.nextID)
		s.uploads[id] = &bytes.Buffer{}
		s.mu.Unlock()
		w.Header().Set("Location", "/v2/"+repo+"/blobs/uploads/"+id)
		w.Header().Set("Range", "0-0")
		w.WriteHeader(http.StatusAccepted)
		return true
	case strings.Contains(p, "/blobs/uploads/fake-"):
		id := p[strings.LastIndex(p, "/")+1:]
		s.mu.Lock()
		buf := s.uploads[id]
		s.mu.Unlock()
		if buf == nil {
			http.Error(w, "unknown upload", http.StatusNotFound)
			return true
		}
		io.Copy(buf, r.Body)
		if r.Method == http.MethodPatch {
			w.Header().Set("Location", p)
			w.Header().Set("Range", fmt.Sprintf("0-%d", buf.Len()-1))
			w.WriteHeader(http.StatusAccepted)
			return true
		}
		d := r.URL.Query().Get("digest")
		if Mode(s.mode.Load()) == AlterUpload {
			b := append([]byte(nil), buf.Bytes()...)
			if len(b) > 0 {
				b[len(b)/2] ^= 0xff
			} else {
				b = []byte("x")
			}
			s.mu.Lock()
			s.altered[d] = b
			s.mu.Unlock()
		}
		w.Header().Set("Docker-Content-Digest", d)
		w.Header().Set("Location", "/v2/"+repo+"/blobs/"+d)
		w.WriteHeader(http.StatusCreated)
		return true
	case strings.Contains(p, "/blobs/sha256:") && (r.Method == http.MethodHead || r.Method == http.MethodGet):
		d := p[strings.LastIndex(p, "/")+1:]
		s.mu.Lock()
		b, ok := s.altered[d]
		s.mu.Unlock()
		if !ok && r.Method == http.MethodGet {
			return false // what it did store, it serves
		}
		if !ok {
			http.Error(w, "", http.StatusNotFound)
			return true
		}
		sum := sha256.Sum256(b)
		w.Header().Set("Docker-Content-Digest", "sha256:"+hex.EncodeToString(sum[:]))
		w.Header().Set("Content-Length", fmt.Sprint(len(b)))
		w.WriteHeader(http.StatusOK)
		if r.Method == http.MethodGet {
			w.Write(b)
		}
		return true
	}
	return false
}

// special serves the generated huge documents.
func (s *Server) special(w http.ResponseWriter, r *http.Request) bool {
	p := r.URL.Path
	switch {
	case strings.HasSuffix(p, "/manifests/"+HugeManifestTag):
		w.Header().Set("Content-Type", "application/vnd.oci.image.manifest.v1+json")
		if r.Method == http.MethodHead {
			return true
		}
		io.WriteString(w, `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","annotations":{"x":"`)
		streamFill(w, r, HugeSize)
		return true
	case strings.HasSuffix(p, "/manifests/"+HugeConfigTag), strings.HasSuffix(p, "/manifests/"+LyingConfigTag):
		size := int64(HugeSize)
		if strings.HasSuffix(p, LyingConfigTag) {
			size = 2
		}
		m := fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",`+
			`"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":%q,"size":%d},"layers":[]}`, hugeConfigDigest, size)
		w.Header().Set("Content-Type", "application/vnd.oci.image.manifest.v1+json")
		w.Header().Set("Content-Length", fmt.Sprint(len(m)))
		if r.Method != http.MethodHead {
			io.WriteString(w, m)
		}
		return true
	case strings.HasSuffix(p, "/blobs/"+hugeConfigDigest):
		if r.Method == http.MethodHead {
			w.Header().Set("Content-Length", fmt.Sprint(HugeSize))
			return true
		}
		io.WriteString(w, `{"architecture":"amd64","os":"linux","x":"`)
		streamFill(w, r, HugeSize)
		return true
	}
	return false
}

// streamFill writes n bytes of 'a' as they are asked for, stopping when
// the client goes away.
func streamFill(w io.Writer, r *http.Request, n int64) {
	chunk := bytes.Repeat([]byte("a"), 64<<10)
	for n > 0 && r.Context().Err() == nil {
		c := chunk
		if int64(len(c)) > n {
			c = c[:n]
		}
		if _, err := w.Write(c); err != nil {
			return
		}
		n -= int64(len(c))
	}
}

func nopLogger() *log.Logger { return log.New(io.Discard, "", 0) }
