package imgref

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/diffah/diffah/fault"
)

// Limits on what a registry may make diffah do. A registry is another
// machine: it may stall, loop or lie, and none of that may hang diffah or
// make it hold unbounded data.
const (
	// DefaultTimeout is how long a registry connection may stay silent
	// (no byte read or written) before the operation fails.
	DefaultTimeout = 60 * time.Second
	// MaxRedirects bounds a chain of HTTP redirects (net/http's default).
	MaxRedirects = 10
)

// retryStatusCodes are the answers worth asking again (as ggcr's default).
var retryStatusCodes = []int{
	http.StatusRequestTimeout, http.StatusTooManyRequests,
	http.StatusInternalServerError, http.StatusBadGateway,
	http.StatusServiceUnavailable, http.StatusGatewayTimeout,
	499, 522,
}

// StallError is a registry connection on which nothing moved for the
// idle timeout. It is not retried: the timeout already was the patience.
type StallError struct {
	Timeout time.Duration
	Op      string // "reading" or "writing"
}

func (e *StallError) Error() string {
	return fmt.Sprintf("the registry connection was idle for %s while %s (--timeout)", e.Timeout, e.Op)
}

// idleConn gives every read and write on a registry connection a deadline
// of d from the moment it starts: an idle timeout, so that a slow but
// moving transfer lives while a silent peer fails. Writing also extends
// the read deadline, since the answer to what is being written is awaited.
type idleConn struct {
	net.Conn
	d time.Duration
}

func (c *idleConn) Read(p []byte) (int, error) {
	c.Conn.SetReadDeadline(time.Now().Add(c.d))
	n, err := c.Conn.Read(p)
	return n, c.stalled(err, "reading")
}

func (c *idleConn) Write(p []byte) (int, error) {
	t := time.Now().Add(c.d)
	c.Conn.SetWriteDeadline(t)
	c.Conn.SetReadDeadline(t)
	n, err := c.Conn.Write(p)
	return n, c.stalled(err, "writing")
}

func (c *idleConn) stalled(err error, op string) error {
	var ne net.Error
	if err != nil && errors.As(err, &ne) && ne.Timeout() {
		return &StallError{Timeout: c.d, Op: op}
	}
	return err
}

// baseTransport is the HTTP transport every registry request goes
// through: idle deadlines on each connection, bounded dial and TLS
// handshake, TLS verification skipped only when insecure.
func baseTransport(o Options) http.RoundTripper {
	d := o.timeout()
	dialer := &net.Dialer{Timeout: d, KeepAlive: 30 * time.Second}
	t := &http.Transport{
		Proxy: http.ProxyFromEnvironment,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := dialer.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			return &idleConn{Conn: c, d: d}, nil
		},
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          100,
		MaxIdleConnsPerHost:   50,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   d,
		ExpectContinueTimeout: time.Second,
	}
	if o.Insecure {
		t.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // asked for with Insecure
	}
	return &guard{inner: t}
}

// guard sits under ggcr's retry and auth layers, so it sees every request
// and every redirect hop: it caps redirect chains (ggcr replaces
// net/http's redirect policy with its own, which has no cap), bounds
// manifest bodies, and names the request in errors from a body.
type guard struct {
	inner http.RoundTripper
}

func (g *guard) RoundTrip(req *http.Request) (*http.Response, error) {
	what := req.Method + " " + redactURL(req)
	hops := 0
	for r := req; r.Response != nil && r.Response.Request != nil; r = r.Response.Request {
		hops++
	}
	if hops > MaxRedirects {
		return nil, fault.Errorf(fault.Env, "%s: stopped after %d redirects (a redirect loop?)", what, MaxRedirects)
	}
	resp, err := g.inner.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	var limit int64 = -1
	if req.Method == http.MethodGet && strings.Contains(req.URL.Path, "/manifests/") && resp.StatusCode/100 == 2 {
		limit = maxManifestSize
		if resp.ContentLength > limit {
			resp.Body.Close()
			return nil, fault.Errorf(fault.Integrity, "%s: the registry sends a manifest of %d bytes, over the limit of %d", what, resp.ContentLength, limit)
		}
	}
	resp.Body = &guardedBody{rc: resp.Body, what: what, limit: limit}
	return resp, nil
}

// redactURL is the request's URL without query (upload session state,
// signed redirect parameters).
func redactURL(req *http.Request) string {
	u := *req.URL
	u.RawQuery, u.User = "", nil
	return u.String()
}

type guardedBody struct {
	rc    io.ReadCloser
	what  string
	limit int64 // -1: none
	n     int64
}

func (b *guardedBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	b.n += int64(n)
	if b.limit >= 0 && b.n > b.limit {
		return n, fault.Errorf(fault.Integrity, "%s: the manifest exceeds the limit of %d bytes", b.what, b.limit)
	}
	if err != nil && err != io.EOF {
		return n, fmt.Errorf("%s (after %d bytes of the body): %w", b.what, b.n, err)
	}
	return n, err
}

func (b *guardedBody) Close() error { return b.rc.Close() }

// retryable says whether a failed registry request is tried again: the
// transient network failures ggcr retries by default, but never a stall
// (it already waited the whole timeout) and never a verdict of ours.
func retryable(err error) bool {
	var stall *StallError
	if err == nil || errors.As(err, &stall) || fault.KindOf(err, 0) != 0 || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	if te, ok := err.(interface{ Temporary() bool }); ok && te.Temporary() {
		return true
	}
	return errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, net.ErrClosed)
}

// backoff is the retry schedule: RetryTimes retries, the first after
// RetryDelay, doubling.
func (o Options) backoff() transport.Backoff {
	delay := o.RetryDelay
	if delay <= 0 {
		delay = defaultRetryDelay
	}
	return transport.Backoff{Duration: delay, Factor: 2, Jitter: 0.1, Steps: max(o.RetryTimes+1, 1)}
}

func (o Options) timeout() time.Duration {
	if o.Timeout > 0 {
		return o.Timeout
	}
	return DefaultTimeout
}

// clientTransport is what diffah's own registry requests use: guard and
// deadlines, retries per Options, the user agent.
func clientTransport(o Options) http.RoundTripper {
	rt := transport.NewRetry(baseTransport(o), transport.WithRetryBackoff(o.backoff()),
		transport.WithRetryPredicate(retryable), transport.WithRetryStatusCodes(retryStatusCodes...))
	return transport.NewUserAgent(rt, "diffah")
}
