package imgref

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"strconv"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/diffah/diffah/fault"
	"github.com/diffah/diffah/internal/ctxio"
	"github.com/diffah/diffah/internal/layout"
)

// regClient reads one repository. It is diffah's own, small, client for
// everything it pulls, so that every check is ours: a manifest is bounded
// in size and hashed (and compared when it was asked for by digest), a
// blob's declared length is compared with its descriptor before reading,
// and its bytes are verified as they stream. Pushes still go through ggcr
// (remote.Write), over the same transport, and are then checked with
// this client (verifyPushed).
type regClient struct {
	repo   name.Repository
	ctx    context.Context
	client *http.Client
	where  string
}

var manifestAccept = string(types.OCIManifestSchema1 + "," + types.OCIImageIndex + "," + types.DockerManifestSchema2 + "," + types.DockerManifestList)

func newRegClient(ctx context.Context, r name.Reference, o Options, where string) (*regClient, error) {
	auth, err := authn.DefaultKeychain.Resolve(r.Context())
	if err != nil {
		return nil, fault.Errorf(fault.Env, "%s: reading credentials: %w", where, err)
	}
	tr, err := transport.NewWithContext(ctx, r.Context().Registry, auth, clientTransport(o), []string{r.Context().Scope(transport.PullScope)})
	if err != nil {
		return nil, remoteErr(where, err)
	}
	return &regClient{repo: r.Context(), ctx: ctx, where: where, client: &http.Client{Transport: tr, CheckRedirect: checkRedirect}}, nil
}

// checkRedirect stops after MaxRedirects hops and, as ggcr does, refuses a
// redirect from one host to a private, loopback or link-local address
// literal on another (a registry pointing diffah at a metadata service).
func checkRedirect(req *http.Request, via []*http.Request) error {
	if len(via) >= MaxRedirects {
		return fmt.Errorf("stopped after %d redirects", MaxRedirects)
	}
	from, to := via[0].URL.Hostname(), req.URL.Hostname()
	if ip := net.ParseIP(to); ip != nil && to != from && (ip.IsPrivate() || ip.IsLoopback() || ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() || ip.IsUnspecified()) {
		return fault.Errorf(fault.Env, "%s redirected to %s, a private address: refused", from, to)
	}
	return nil
}

func (c *regClient) url(kind, id string) string {
	return fmt.Sprintf("%s://%s/v2/%s/%s/%s", c.repo.Scheme(), c.repo.RegistryStr(), c.repo.RepositoryStr(), kind, id)
}

func (c *regClient) do(method, kind, id, accept string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(c.ctx, method, c.url(kind, id), nil)
	if err != nil {
		return nil, fault.Errorf(fault.Usage, "%s: %w", c.where, err)
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return nil, err
	}
	if err := transport.CheckError(resp, http.StatusOK); err != nil {
		resp.Body.Close()
		return nil, err
	}
	return resp, nil
}

// manifest fetches the manifest or index id (a tag or a digest). Its
// bytes are bounded by maxManifestSize (and by want.Size when known) and,
// when id is a digest, must hash to it.
func (c *regClient) manifest(id string, want *v1.Descriptor) ([]byte, v1.Descriptor, error) {
	what := c.where + ": manifest " + id
	if want != nil {
		if err := layout.CheckDigest(Digest(want.Digest), what); err != nil {
			return nil, v1.Descriptor{}, err
		}
		if want.Size < 0 || want.Size > maxManifestSize {
			return nil, v1.Descriptor{}, fault.Errorf(fault.Integrity, "%s: size %d is outside 0..%d bytes", what, want.Size, maxManifestSize)
		}
	}
	resp, err := c.do(http.MethodGet, "manifests", id, manifestAccept)
	if err != nil {
		return nil, v1.Descriptor{}, remoteErr(what, err)
	}
	defer resp.Body.Close()
	limit := int64(maxManifestSize)
	if want != nil {
		limit = want.Size
	}
	raw, err := io.ReadAll(io.LimitReader(ctxio.Reader{Ctx: c.ctx, R: resp.Body}, limit+1))
	if err != nil {
		return nil, v1.Descriptor{}, remoteErr(what, err)
	}
	if int64(len(raw)) > limit {
		return nil, v1.Descriptor{}, fault.Errorf(fault.Integrity, "%s: the registry sent more than %d bytes", what, limit)
	}
	got := sha256Hash(raw)
	if want != nil && (got != want.Digest || int64(len(raw)) != want.Size) {
		return nil, v1.Descriptor{}, fault.Errorf(fault.Integrity, "%s: the registry sent %d bytes hashing to %s, want %d bytes of %s", what, len(raw), got, want.Size, want.Digest)
	}
	if d, err := v1.NewHash(id); err == nil && d != got {
		return nil, v1.Descriptor{}, fault.Errorf(fault.Integrity, "%s: the registry sent bytes hashing to %s", what, got)
	}
	// The document's own mediaType wins over the header.
	mt := sniffMediaType(raw)
	if mt == "" {
		mt = types.MediaType(resp.Header.Get("Content-Type"))
	}
	return raw, v1.Descriptor{MediaType: mt, Digest: got, Size: int64(len(raw))}, nil
}

// blob opens the blob desc names as a stream verified against its digest
// and size; a Content-Length that disagrees with the size is refused
// before any byte is read.
func (c *regClient) blob(desc v1.Descriptor) (io.ReadCloser, error) {
	what := c.where + ": blob " + desc.Digest.String()
	if err := layout.CheckDigest(Digest(desc.Digest), what); err != nil {
		return nil, err
	}
	if desc.Size < 0 {
		return nil, fault.Errorf(fault.Integrity, "%s: negative size %d", what, desc.Size)
	}
	resp, err := c.do(http.MethodGet, "blobs", desc.Digest.String(), "")
	if err != nil {
		return nil, remoteErr(what, err)
	}
	if resp.ContentLength >= 0 && resp.ContentLength != desc.Size {
		resp.Body.Close()
		return nil, fault.Errorf(fault.Integrity, "%s: the registry sends %d bytes, the manifest says %d", what, resp.ContentLength, desc.Size)
	}
	body := readCloser{Reader: &netReader{r: ctxio.Reader{Ctx: c.ctx, R: resp.Body}, what: what}, Closer: resp.Body}
	return verifyReader(body, desc.Digest, desc.Size, what)
}

// netReader tags what fails while reading from the network as Env, naming
// the blob; verdicts on the bytes come from the verifier above it.
type netReader struct {
	r    io.Reader
	what string
}

func (r *netReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if err != nil && err != io.EOF {
		// The transport's guard says where in the body it failed.
		return n, remoteErr(r.what, err)
	}
	return n, err
}

// checkBlob asks the registry (HEAD) whether it holds desc: present, of
// desc's size and, when it says, of desc's digest.
func (c *regClient) checkBlob(desc v1.Descriptor) error {
	what := c.where + ": blob " + desc.Digest.String()
	resp, err := c.do(http.MethodHead, "blobs", desc.Digest.String(), "")
	if err != nil {
		var te *transport.Error
		if errors.As(err, &te) && te.StatusCode == http.StatusNotFound {
			return fault.WithHint(fault.Errorf(fault.Integrity, "%s: the registry accepted the upload but does not hold the blob", what), fault.Integrity,
				"the registry lost or refused what it acknowledged; check its storage and push again")
		}
		return remoteErr(what, err)
	}
	resp.Body.Close()
	if n, err := strconv.ParseInt(resp.Header.Get("Content-Length"), 10, 64); err == nil && n != desc.Size {
		return fault.Errorf(fault.Integrity, "%s: the registry holds %d bytes, the manifest says %d", what, n, desc.Size)
	}
	if d := resp.Header.Get("Docker-Content-Digest"); d != "" && d != desc.Digest.String() {
		return fault.Errorf(fault.Integrity, "%s: the registry holds a blob it says is %s", what, d)
	}
	return nil
}

// blobSize asks the registry (HEAD) for the size of the blob desc names:
// fs.ErrNotExist when it does not hold it, desc's own size when it holds
// it but does not say.
func (c *regClient) blobSize(desc v1.Descriptor) (int64, error) {
	what := c.where + ": blob " + desc.Digest.String()
	resp, err := c.do(http.MethodHead, "blobs", desc.Digest.String(), "")
	if err != nil {
		var te *transport.Error
		if errors.As(err, &te) && te.StatusCode == http.StatusNotFound {
			return 0, fs.ErrNotExist
		}
		return 0, remoteErr(what, err)
	}
	resp.Body.Close()
	if d := resp.Header.Get("Docker-Content-Digest"); d != "" && d != desc.Digest.String() {
		return 0, fault.Errorf(fault.Integrity, "%s: the registry holds a blob it says is %s", what, d)
	}
	if n, err := strconv.ParseInt(resp.Header.Get("Content-Length"), 10, 64); err == nil {
		return n, nil
	}
	return desc.Size, nil
}

// verifyPushed checks, after a push, that the registry serves manifest raw
// under id (the tag or digest pushed) and holds every blob it references.
func (c *regClient) verifyPushed(id string, raw []byte, blobs []v1.Descriptor) error {
	want := sha256Hash(raw)
	_, desc, err := c.manifest(id, nil)
	if err != nil {
		return err
	}
	if desc.Digest != want {
		return fault.WithHint(fault.Errorf(fault.Integrity, "%s: after the push the registry serves manifest %s, not the pushed %s", c.where, desc.Digest, want), fault.Integrity,
			"another client may have pushed to the same tag at once, or the registry altered the manifest; push again")
	}
	for _, b := range blobs {
		if err := c.checkBlob(b); err != nil {
			return err
		}
	}
	return nil
}
