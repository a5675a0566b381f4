package imgref

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"sort"
	"strings"
	"syscall"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"

	"github.com/diffah/diffah/fault"
	"github.com/diffah/diffah/internal/atomicdir"
	"github.com/diffah/diffah/internal/ctxio"
	"github.com/diffah/diffah/internal/progress"
)

// The docker-daemon: transport speaks the Docker Engine API (the subset
// Podman's `podman system service` serves too): GET /images/{name}/json to
// find the image ID, GET /images/{id}/get for a `docker save` stream,
// POST /images/load for a `docker load` stream. go-containerregistry's
// pkg/v1/daemon is not used: by default it buffers the whole saved image in
// memory (io.ReadAll of the save); unbuffered it asks the daemon for a full
// save on every layer read; its file-backed mode leaves a named temporary
// file until the garbage collector runs; and it needs the Docker client
// library. Here a save is spooled once to an unlinked temporary file and
// read in place like a docker-archive, with that transport's checks; a
// load is streamed from the image's verified blobs. Memory stays bounded
// whatever the image size (see TestDaemonMemoryBounded).

// defaultDaemonHost is where the Docker CLI looks when DOCKER_HOST is unset.
const defaultDaemonHost = "unix:///var/run/docker.sock"

// maxDaemonReply bounds what is read of a daemon's JSON replies (inspect,
// errors, load messages); image content never goes through this path.
const maxDaemonReply = 4 << 20

// imageID is a full image ID as the daemon prints it.
var imageID = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)

// parseDaemon checks the reference after docker-daemon:: NAME[:TAG],
// NAME@DIGEST, or an image ID (sha256:HEX, as containers-image writes it,
// or @sha256:HEX).
func parseDaemon(s, rest string) (Ref, error) {
	if rest == "" {
		return Ref{}, usage(fmt.Sprintf("image reference %q: docker-daemon: needs NAME[:TAG] or an image ID", s), "use e.g. docker-daemon:example.com/app:v2 or docker-daemon:sha256:IMAGEID")
	}
	id := strings.TrimPrefix(rest, "@")
	if strings.HasPrefix(id, "sha256:") {
		if !imageID.MatchString(id) {
			return Ref{}, usage(fmt.Sprintf("image reference %q: an image ID is sha256: and 64 lowercase hex digits", s),
				"print the full ID with: docker image inspect --format '{{.Id}}' NAME (or podman image inspect)")
		}
		return Ref{Transport: DockerDaemon, Path: rest}, nil
	}
	if strings.HasPrefix(rest, "@") {
		return Ref{}, usage(fmt.Sprintf("image reference %q: an image ID is @sha256:HEX", s), "use docker-daemon:NAME[:TAG] or docker-daemon:sha256:IMAGEID")
	}
	if _, err := name.ParseReference(rest); err != nil {
		return Ref{}, usage(fmt.Sprintf("image reference %q: %v", s, err), "use docker-daemon:NAME[:TAG], e.g. docker-daemon:example.com/app:v2")
	}
	return Ref{Transport: DockerDaemon, Path: rest}, nil
}

// daemonName is what the daemon is asked for: the ID without "@", else
// the name as written (the daemon applies its own defaults: docker.io,
// :latest).
func (r Ref) daemonName() string { return strings.TrimPrefix(r.Path, "@") }

// isDaemonID reports whether the reference names an image ID.
func (r Ref) isDaemonID() bool { return imageID.MatchString(r.daemonName()) }

// Local reports whether the image lives in a file or directory (as
// opposed to a registry or a daemon), so that work files can go beside it.
func (r Ref) Local() bool { return r.Transport != Docker && r.Transport != DockerDaemon }

// engine is a minimal Docker Engine API client.
type engine struct {
	host   string // DOCKER_HOST as given, or the default, for messages
	base   string // URL prefix
	client *http.Client
}

func newEngine() (*engine, error) {
	host := os.Getenv("DOCKER_HOST")
	if host == "" {
		host = defaultDaemonHost
	}
	u, err := url.Parse(host)
	if err != nil {
		return nil, fault.WithHint(fault.Errorf(fault.Usage, "DOCKER_HOST=%q: %v", host, err), fault.Usage, "use unix:///PATH/TO/SOCKET or tcp://HOST:PORT")
	}
	e := &engine{host: host}
	switch u.Scheme {
	case "unix":
		sock := u.Path
		if sock == "" {
			sock = u.Host
		}
		e.base = "http://daemon"
		e.client = &http.Client{Transport: &http.Transport{
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, "unix", sock)
			},
		}}
	case "tcp", "http":
		if os.Getenv("DOCKER_TLS_VERIFY") != "" || os.Getenv("DOCKER_CERT_PATH") != "" {
			return nil, fault.WithHint(fault.Errorf(fault.Usage, "DOCKER_HOST=%s with TLS (DOCKER_TLS_VERIFY/DOCKER_CERT_PATH): diffah does not speak TLS to a daemon", host),
				fault.Usage, "use the daemon's unix socket (DOCKER_HOST=unix:///var/run/docker.sock), or forward it over ssh: ssh -L /tmp/docker.sock:/var/run/docker.sock HOST")
		}
		e.base = "http://" + u.Host
		e.client = &http.Client{}
	default:
		return nil, fault.WithHint(fault.Errorf(fault.Usage, "DOCKER_HOST=%s: scheme %q is not supported", host, u.Scheme),
			fault.Usage, "use unix:///PATH/TO/SOCKET or tcp://HOST:PORT; for ssh://, forward the socket: ssh -L /tmp/docker.sock:/var/run/docker.sock HOST")
	}
	return e, nil
}

// unreachable turns a failure to talk to the daemon into an environment
// error naming the socket.
func (e *engine) unreachable(where string, err error) error {
	var op *net.OpError
	if errors.As(err, &op) {
		err = op // "dial unix /path: connect: no such file or directory", without the URL
	}
	from := "from DOCKER_HOST"
	if os.Getenv("DOCKER_HOST") == "" {
		from = "the default; DOCKER_HOST is unset"
	}
	hint := "is the container engine running? diffah talks to " + e.host + " (" + from + "); " +
		"for Podman start its Docker-compatible service: podman system service --time 0 unix:///run/podman/podman.sock & and export DOCKER_HOST=unix:///run/podman/podman.sock"
	if errors.Is(err, syscall.EACCES) {
		hint = "no permission on " + e.host + ": run as a user in the docker group, or point DOCKER_HOST at a socket you may use"
	}
	return fault.WithHint(fault.Errorf(fault.Env, "%s: cannot reach the container engine at %s: %w", where, e.host, err), fault.Env, hint)
}

// do sends one request; a status other than 2xx is an error carrying the
// daemon's message.
func (e *engine) do(ctx context.Context, where, method, path string, body io.Reader, header map[string]string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, e.base+path, body)
	if err != nil {
		return nil, fault.Errorf(fault.Internal, "%s: %w", where, err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := e.client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, e.unreachable(where, err)
	}
	if resp.StatusCode/100 == 2 {
		return resp, nil
	}
	defer resp.Body.Close()
	msg := daemonMessage(resp.Body)
	if resp.StatusCode == http.StatusNotFound {
		return nil, fault.WithHint(fault.Errorf(fault.Env, "%s: not found in the container engine at %s: %s", where, e.host, msg),
			fault.Env, "list what it holds with: docker image ls (or podman images); load the image first (docker load < FILE), or check DOCKER_HOST")
	}
	return nil, fault.Errorf(fault.Env, "%s: the container engine at %s answered %s: %s", where, e.host, resp.Status, msg)
}

// daemonMessage reads the {"message": "..."} body of an API error.
func daemonMessage(r io.Reader) string {
	b, _ := io.ReadAll(io.LimitReader(r, maxDaemonReply))
	var m struct {
		Message string `json:"message"`
	}
	if json.Unmarshal(b, &m) == nil && m.Message != "" {
		return m.Message
	}
	s := strings.TrimSpace(string(b))
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}

// daemonInspect is the part of GET /images/{name}/json diffah uses.
type daemonInspect struct {
	ID     string `json:"Id"`
	RootFS struct {
		Layers []string `json:"Layers"`
	} `json:"RootFS"`
}

func (e *engine) inspect(ctx context.Context, where, nm string) (*daemonInspect, error) {
	resp, err := e.do(ctx, where, http.MethodGet, "/images/"+pathName(nm)+"/json", nil, nil)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxDaemonReply+1))
	if err != nil {
		return nil, fault.Errorf(fault.Env, "%s: reading the image description: %w", where, err)
	}
	var in daemonInspect
	if len(b) > maxDaemonReply {
		return nil, fault.Errorf(fault.Integrity, "%s: image description larger than %d bytes", where, maxDaemonReply)
	}
	if err := json.Unmarshal(b, &in); err != nil {
		return nil, fault.Errorf(fault.Integrity, "%s: image description: %w", where, err)
	}
	if !imageID.MatchString(in.ID) {
		return nil, fault.Errorf(fault.Integrity, "%s: the container engine gave image ID %q, not sha256:HEX", where, in.ID)
	}
	return &in, nil
}

// pathName escapes a reference for a URL path, keeping "/" (the Engine API
// routes /images/{name:.*}/json).
func pathName(nm string) string {
	parts := strings.Split(nm, "/")
	for i, p := range parts {
		parts[i] = url.PathEscape(p)
	}
	return strings.Join(parts, "/")
}

// openDaemon saves the image from the daemon into an unlinked temporary
// file and reads it in place as a docker-archive. It asks by image ID,
// found first, so a tag moved meanwhile cannot swap the image, and checks
// the saved config is that ID.
func openDaemon(ctx context.Context, ref Ref) (*storeImage, *tarFiles, error) {
	where := ref.String()
	e, err := newEngine()
	if err != nil {
		return nil, nil, err
	}
	in, err := e.inspect(ctx, where, ref.daemonName())
	if err != nil {
		return nil, nil, err
	}
	resp, err := e.do(ctx, where, http.MethodGet, "/images/"+in.ID+"/get", nil, nil)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	// Unlinked at once: the descriptor keeps the data, and nothing is left
	// behind when the process dies.
	f, err := atomicdir.Scratch("", where+": spooling the saved image")
	if err != nil {
		return nil, nil, fault.WithHint(err, fault.Env, "set TMPDIR to a directory with room for the uncompressed image")
	}
	if _, err := io.Copy(f, ctxio.Reader{Ctx: ctx, R: resp.Body}); err != nil {
		f.Close()
		if ctx.Err() != nil {
			return nil, nil, ctx.Err()
		}
		return nil, nil, fault.WithHint(fault.Errorf(fault.Env, "%s: saving the image from %s: %w", where, e.host, err), fault.Env, "the spool goes to TMPDIR: it needs room for the uncompressed image")
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		f.Close()
		return nil, nil, fault.Errorf(fault.Env, "%s: %w", where, err)
	}
	tf, err := indexTar(ctx, f, where, true)
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	si, err := readDockerArchive(tf, "")
	if err != nil {
		tf.Close()
		return nil, nil, err
	}
	if got := si.manifest.Config.Digest.String(); got != in.ID {
		// An engine that names images by manifest (Docker's containerd
		// image store) has another ID; the layers must still be the ones
		// it described.
		raw, err := si.RawConfigFile()
		var cf *v1.ConfigFile
		if err == nil {
			cf, err = v1.ParseConfigFile(bytes.NewReader(raw))
		}
		if err == nil {
			err = sameLayers(cf, in)
		}
		if err != nil {
			tf.Close()
			return nil, nil, fault.Errorf(fault.Integrity, "%s: the engine saved an image whose config is %s, but it names the image %s (%v)", where, got, in.ID, err)
		}
	}
	return si, tf, nil
}

// sameLayers checks a config lists the diffIDs the engine described.
func sameLayers(cf *v1.ConfigFile, in *daemonInspect) error {
	var have []string
	for _, d := range cf.RootFS.DiffIDs {
		have = append(have, d.String())
	}
	if len(in.RootFS.Layers) == 0 || strings.Join(have, ",") != strings.Join(in.RootFS.Layers, ",") {
		return fmt.Errorf("the config lists layers %v, the engine describes %v", have, in.RootFS.Layers)
	}
	return nil
}

// openDaemonImage is Open for docker-daemon:.
func openDaemonImage(ctx context.Context, ref Ref, out *Image) (v1.Image, *resolved, error) {
	si, tf, err := openDaemon(ctx, ref)
	if err != nil {
		return nil, nil, err
	}
	out.Close = tf.Close
	img, err := partial.CompressedToImage(si)
	if err != nil {
		return nil, nil, err
	}
	return img, &resolved{}, nil
}

// LoadDaemon loads img into the daemon under ref (NAME[:TAG]) as `docker
// load` would and returns the image ID the daemon reports. The daemon
// keeps the config (whose digest is the image ID) and the uncompressed
// layers, not the manifest or the compressed blobs, so the manifest digest
// is not kept: compare image IDs (docker image inspect).
func LoadDaemon(ctx context.Context, ref Ref, img v1.Image, o Options) (string, error) {
	where := ref.String()
	if ref.Transport != DockerDaemon {
		return "", fault.Errorf(fault.Internal, "LoadDaemon: %s is not docker-daemon:", where)
	}
	tag, err := ref.loadTag()
	if err != nil {
		return "", err
	}
	e, err := newEngine()
	if err != nil {
		return "", err
	}
	src, err := collect(ctx, img, where)
	if err != nil {
		return "", err
	}
	entries, total := loadEntries(src, tag)
	bar := progress.New(o.Progress, "load "+where, total)
	defer bar.Done()
	pr, pw := io.Pipe()
	produced := make(chan error, 1)
	go func() {
		ts := &tarStream{ctx: ctx, entries: entries}
		err := ts.write(bar.Writer(pw))
		pw.CloseWithError(err)
		produced <- err
	}()
	resp, err := e.do(ctx, where, http.MethodPost, "/images/load?quiet=1", pr, map[string]string{"Content-Type": "application/x-tar"})
	pr.CloseWithError(errors.New("load aborted"))
	perr := <-produced
	if perr != nil && (fault.KindOf(perr, 0) != 0 || ctx.Err() != nil) {
		// Our own failure (a blob that did not verify, an interrupt)
		// explains more than what the engine saw of it.
		if resp != nil {
			resp.Body.Close()
		}
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		return "", fmt.Errorf("%s: %w", where, perr)
	}
	if err != nil {
		return "", err
	}
	if perr != nil {
		resp.Body.Close()
		return "", fault.Errorf(fault.Env, "%s: streaming the image to %s: %w", where, e.host, perr)
	}
	msgs, err := readLoadStream(resp.Body)
	resp.Body.Close()
	if err != nil {
		return "", fault.Errorf(fault.Env, "%s: loading into %s: %w", where, e.host, err)
	}
	want := src.manifest.Config.Digest.String()
	in, err := e.inspect(ctx, where, tag)
	if err != nil {
		return "", fmt.Errorf("%w (after loading; the engine said: %s)", err, strings.Join(msgs, "; "))
	}
	if in.ID == want {
		return in.ID, nil
	}
	// An engine that names images by manifest (Docker's containerd image
	// store) has another ID; then its layers must still be the config's.
	cfg, err := img.ConfigFile()
	if err != nil {
		return "", fmt.Errorf("%s: %w", where, err)
	}
	if err := sameLayers(cfg, in); err != nil {
		return "", fault.Errorf(fault.Integrity, "%s: after loading, the engine holds image %s, expected %s: %v", where, in.ID, want, err)
	}
	o.logger().Warn("the container engine names the image by another ID than its config digest", "ref", where, "id", in.ID, "config", want)
	return in.ID, nil
}

// loadTag is the NAME:TAG an image is loaded as: the reference with
// :latest added when it has no tag, as docker does.
func (r Ref) loadTag() (string, error) {
	if r.isDaemonID() || strings.Contains(r.Path, "@") {
		return "", fault.WithHint(fault.Errorf(fault.Usage, "%s: an image is loaded into a daemon under NAME[:TAG], not an ID or digest", r),
			fault.Usage, "use e.g. -o docker-daemon:example.com/app:v2")
	}
	t, err := name.NewTag(r.Path)
	if err != nil {
		return "", usage(fmt.Sprintf("%s: %v", r, err), "use docker-daemon:NAME[:TAG]")
	}
	if last := r.Path[strings.LastIndex(r.Path, "/")+1:]; !strings.Contains(last, ":") {
		return r.Path + ":" + t.TagStr(), nil
	}
	return r.Path, nil
}

// loadEntries lays src out as a docker load archive: manifest.json naming
// the config and layers by blobs/sha256/<hex>, and the blobs. The engine
// detects each layer's compression itself. It returns the entries and
// their total size (for progress).
func loadEntries(src *source, tag string) ([]tarEntry, int64) {
	m := src.manifest
	entry := archiveEntry{Config: "blobs/sha256/" + m.Config.Digest.Hex, RepoTags: []string{tag}, Layers: []string{}}
	for _, l := range m.Layers {
		entry.Layers = append(entry.Layers, "blobs/sha256/"+l.Digest.Hex)
	}
	mj, err := json.Marshal([]archiveEntry{entry})
	if err != nil {
		panic(err) // plain structs of strings always encode
	}
	entries := []tarEntry{{name: "blobs/"}, {name: "blobs/sha256/"}, bytesEntry("manifest.json", mj)}
	total := int64(len(mj))
	for _, b := range src.blobs {
		entries = append(entries, tarEntry{name: "blobs/sha256/" + b.desc.Digest.Hex, size: b.desc.Size, open: b.open})
		total += b.desc.Size
	}
	sort.SliceStable(entries, func(i, j int) bool { return entries[i].name < entries[j].name })
	return entries, total
}

// maxLoadMessages bounds the messages kept from a load's reply.
const maxLoadMessages = 64

// readLoadStream reads the JSON messages POST /images/load streams back
// ({"stream": "Loaded image: …"} or {"error": …, "errorDetail": {…}}) and
// returns the text ones, or the first error the engine reported.
func readLoadStream(r io.Reader) ([]string, error) {
	dec := json.NewDecoder(bufio.NewReader(io.LimitReader(r, maxDaemonReply)))
	var msgs []string
	for {
		var m struct {
			Stream      string `json:"stream"`
			Status      string `json:"status"`
			Error       string `json:"error"`
			ErrorDetail *struct {
				Message string `json:"message"`
			} `json:"errorDetail"`
		}
		err := dec.Decode(&m)
		if errors.Is(err, io.EOF) {
			return msgs, nil
		}
		if err != nil {
			return msgs, fmt.Errorf("reading the engine's reply: %w", err)
		}
		if m.ErrorDetail != nil && m.ErrorDetail.Message != "" {
			return msgs, errors.New(m.ErrorDetail.Message)
		}
		if m.Error != "" {
			return msgs, errors.New(m.Error)
		}
		for _, s := range []string{m.Stream, m.Status} {
			if s = strings.TrimSpace(s); s != "" && len(msgs) < maxLoadMessages {
				msgs = append(msgs, s)
			}
		}
	}
}

// CheckOutput fails fast, before any work, on an output that cannot be
// written: for docker-daemon:, a reference that is not NAME[:TAG], or an
// engine that does not answer. Other transports are checked when written.
func CheckOutput(ctx context.Context, ref Ref) error {
	if ref.Transport != DockerDaemon {
		return nil
	}
	if _, err := ref.loadTag(); err != nil {
		return err
	}
	e, err := newEngine()
	if err != nil {
		return err
	}
	resp, err := e.do(ctx, ref.String(), http.MethodGet, "/_ping", nil, nil)
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}
