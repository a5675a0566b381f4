// Package testpodman runs a real container engine for tests: Debian's
// podman serving its Docker-compatible API (`podman system service`) on a
// unix socket, with vfs storage, its root, run root and socket in a fresh
// temporary directory, started for a test and stopped (and removed) when
// it ends. Tests skip, saying why, where podman is absent or cannot run.
package testpodman

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Binary is the engine used; tests skip when it is absent.
const Binary = "/usr/bin/podman"

// Service is a running podman API service.
type Service struct {
	// Host is the DOCKER_HOST value that reaches it: unix://SOCKET.
	Host string
	// Socket is the path of its unix socket.
	Socket string
	dir    string
	env    []string
	args   []string
}

// Start launches a service and stops it when the test ends. It skips the
// test when podman is not installed or cannot start here.
func Start(t testing.TB) *Service {
	t.Helper()
	if _, err := os.Stat(Binary); err != nil {
		t.Skipf("podman not installed (%v): run scripts/deps.sh", err)
	}
	// A short path: a unix socket name is limited to 108 bytes, which a
	// test's TempDir can exceed.
	dir, err := os.MkdirTemp("", "podman-")
	if err != nil {
		t.Fatal(err)
	}
	s := &Service{dir: dir, Socket: filepath.Join(dir, "api.sock")}
	s.Host = "unix://" + s.Socket
	for _, d := range []string{"root", "run", "tmp"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	// Configuration files of its own, so the machine's /etc/containers
	// (another storage driver, registries) does not leak in.
	storage := fmt.Sprintf("[storage]\ndriver = \"vfs\"\ngraphroot = %q\nrunroot = %q\n", filepath.Join(dir, "root"), filepath.Join(dir, "run"))
	engine := fmt.Sprintf("[engine]\ncgroup_manager = \"cgroupfs\"\nevents_logger = \"none\"\ntmp_dir = %q\n", filepath.Join(dir, "tmp"))
	for name, content := range map[string]string{"storage.conf": storage, "containers.conf": engine, "registries.conf": "unqualified-search-registries = []\n"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	s.env = append(os.Environ(),
		"CONTAINERS_STORAGE_CONF="+filepath.Join(dir, "storage.conf"),
		"CONTAINERS_CONF="+filepath.Join(dir, "containers.conf"),
		"CONTAINERS_REGISTRIES_CONF="+filepath.Join(dir, "registries.conf"),
		"TMPDIR="+filepath.Join(dir, "tmp"))
	s.args = []string{"--root", filepath.Join(dir, "root"), "--runroot", filepath.Join(dir, "run"), "--storage-driver", "vfs",
		"--tmpdir", filepath.Join(dir, "tmp"), "--cgroup-manager", "cgroupfs", "--events-backend", "none"}
	logPath := filepath.Join(dir, "service.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(Binary, append(append([]string{}, s.args...), "system", "service", "--time", "0", s.Host)...)
	cmd.Env = s.env
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		logf.Close()
		os.RemoveAll(dir)
		t.Skipf("podman cannot start here: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stop := func() {
		// Only the service's own process group.
		syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		}
		logf.Close()
		os.RemoveAll(dir)
	}
	if err := waitReady(s.Socket, exited, 60*time.Second); err != nil {
		log, _ := os.ReadFile(logPath)
		stop()
		t.Skipf("podman service did not come up here (%v); its log:\n%s", err, log)
	}
	t.Cleanup(stop)
	return s
}

func waitReady(sock string, exited chan error, limit time.Duration) error {
	c := Client(sock)
	deadline := time.Now().Add(limit)
	for {
		select {
		case err := <-exited:
			exited <- err
			return fmt.Errorf("it exited: %v", err)
		default:
		}
		resp, err := c.Get("http://podman/_ping")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no answer on %s after %s: %v", sock, limit, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Client is an HTTP client for the Engine API on sock.
func Client(sock string) *http.Client {
	return &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", sock)
	}}}
}

// Podman runs the podman CLI on the service's storage (e.g. "save",
// "load", "image", "inspect") and returns its stdout; it fails the test
// on error.
func (s *Service) Podman(t testing.TB, args ...string) []byte {
	t.Helper()
	out, err := s.TryPodman(args...)
	if err != nil {
		t.Fatalf("podman %s: %v", strings.Join(args, " "), err)
	}
	return out
}

// TryPodman is Podman returning the error (with stderr) instead.
func (s *Service) TryPodman(args ...string) ([]byte, error) {
	cmd := exec.Command(Binary, append(append([]string{}, s.args...), args...)...)
	cmd.Env = s.env
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("%w: %s", err, stderr.String())
	}
	return out, nil
}
