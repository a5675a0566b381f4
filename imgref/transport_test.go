package imgref

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/diffah/diffah/fault"
)

func get(t *testing.T, o Options, url string) (*http.Response, error) {
	t.Helper()
	req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, url, nil)
	return (&http.Client{Transport: clientTransport(o)}).Do(req)
}

// TestIdleTimeout: a server that sends headers and part of a body, then
// nothing, fails the read after the idle timeout with a StallError; one
// that keeps sending slowly, for longer than the timeout in total, lives.
func TestIdleTimeout(t *testing.T) {
	quit := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/silent" {
			select {
			case <-r.Context().Done():
			case <-quit:
			}
			return
		}
		w.Write([]byte("part"))
		w.(http.Flusher).Flush()
		if r.URL.Path == "/stall" {
			select {
			case <-r.Context().Done():
			case <-quit:
			}
			return
		}
		for i := 0; i < 8; i++ {
			time.Sleep(100 * time.Millisecond)
			w.Write([]byte("."))
			w.(http.Flusher).Flush()
		}
	}))
	defer srv.Close()
	defer close(quit)
	o := Options{Timeout: 300 * time.Millisecond}
	for _, path := range []string{"/silent", "/stall"} {
		start := time.Now()
		resp, err := get(t, o, srv.URL+path)
		if err == nil {
			_, err = io.ReadAll(resp.Body)
			resp.Body.Close()
		}
		var stall *StallError
		if !errors.As(err, &stall) || !strings.Contains(err.Error(), "--timeout") {
			t.Fatalf("%s: %v, want a stall", path, err)
		}
		if d := time.Since(start); d > 10*time.Second {
			t.Fatalf("%s: failed after %v", path, d)
		}
		if retryable(err) {
			t.Fatalf("%s: a stall is retried", path)
		}
	}
	resp, err := get(t, o, srv.URL+"/slow")
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || string(b) != "part........" {
		t.Fatalf("slow but moving: %q, %v", b, err)
	}
}

// TestRedirectCap: a redirect loop ends after MaxRedirects hops, also for
// clients whose redirect policy has no cap (as ggcr's).
func TestRedirectCap(t *testing.T) {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		http.Redirect(w, r, r.URL.Path, http.StatusTemporaryRedirect)
	}))
	defer srv.Close()
	c := &http.Client{Transport: clientTransport(Options{}), CheckRedirect: func(*http.Request, []*http.Request) error { return nil }}
	_, err := c.Get(srv.URL + "/v2/")
	if err == nil || !strings.Contains(err.Error(), "redirects") {
		t.Fatalf("%v", err)
	}
	if got := n.Load(); got > MaxRedirects+1 {
		t.Fatalf("%d requests", got)
	}
}

// TestManifestCap: a manifest body larger than the limit is refused
// (Integrity) without being read whole: up front when Content-Length
// says so, else at the first byte past the limit.
func TestManifestCap(t *testing.T) {
	var sent atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/declared") {
			w.Header().Set("Content-Length", fmt.Sprint(maxManifestSize+1))
		}
		chunk := make([]byte, 1<<20)
		for i := 0; i < 64 && r.Context().Err() == nil; i++ {
			if _, err := w.Write(chunk); err != nil {
				return
			}
			sent.Add(int64(len(chunk)))
		}
	}))
	defer srv.Close()
	for _, path := range []string{"/v2/app/manifests/declared", "/v2/app/manifests/streamed"} {
		resp, err := get(t, Options{}, srv.URL+path)
		if err == nil {
			_, err = io.ReadAll(resp.Body)
			resp.Body.Close()
		}
		if fault.KindOf(err, 0) != fault.Integrity || !strings.Contains(err.Error(), "limit") {
			t.Fatalf("%s: %v", path, err)
		}
	}
	// A blob is not a manifest: no cap here (its descriptor bounds it).
	resp, err := get(t, Options{}, srv.URL+"/v2/app/blobs/sha256:x")
	if err != nil {
		t.Fatal(err)
	}
	n, err := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil || n != 64<<20 {
		t.Fatalf("blob: %d bytes, %v", n, err)
	}
}

// TestRemoteErr: every registry failure gets its category.
func TestRemoteErr(t *testing.T) {
	for _, c := range []struct {
		err  error
		kind fault.Kind
		text string
	}{
		{&StallError{Timeout: time.Second, Op: "reading"}, fault.Env, "idle"},
		{&transport.Error{StatusCode: http.StatusNotFound}, fault.Env, "not found"},
		{&transport.Error{StatusCode: http.StatusUnauthorized}, fault.Env, "access denied"},
		{&transport.Error{StatusCode: http.StatusServiceUnavailable}, fault.Env, "503"},
		{fault.Errorf(fault.Integrity, "x: content has digest"), fault.Integrity, "content has digest"},
		{io.ErrUnexpectedEOF, fault.Env, "unexpected EOF"},
	} {
		err := remoteErr("docker://h/app:1", c.err)
		if fault.KindOf(err, 0) != c.kind || !strings.Contains(err.Error(), "docker://h/app:1") || !strings.Contains(err.Error(), c.text) {
			t.Errorf("%v: %v (kind %v)", c.err, err, fault.KindOf(err, 0))
		}
	}
	if !retryable(io.ErrUnexpectedEOF) || retryable(fault.Errorf(fault.Integrity, "x")) || retryable(context.Canceled) {
		t.Error("retryable")
	}
}

// TestRedirectToPrivate: a registry may not send diffah's own client to a
// private or link-local address on another host.
func TestRedirectToPrivate(t *testing.T) {
	from, _ := http.NewRequest(http.MethodGet, "http://registry.example/v2/app/blobs/sha256:x", nil)
	for _, c := range []struct {
		to string
		ok bool
	}{
		{"http://169.254.169.254/latest/meta-data", false},
		{"http://10.0.0.1/x", false},
		{"http://127.0.0.1/x", false},
		{"http://storage.example/x", true},
	} {
		to, _ := http.NewRequest(http.MethodGet, c.to, nil)
		if err := checkRedirect(to, []*http.Request{from}); (err == nil) != c.ok {
			t.Errorf("%s: %v", c.to, err)
		}
	}
	// Same host: allowed (a loopback registry redirecting to itself).
	self, _ := http.NewRequest(http.MethodGet, "http://127.0.0.1:5000/v2/", nil)
	if err := checkRedirect(self, []*http.Request{self}); err != nil {
		t.Error(err)
	}
}
