// Package testregistry runs a real registry (Debian's docker-registry, the
// CNCF distribution server) on a free loopback port for the duration of a
// test, with its storage in the test's temporary directory.
package testregistry

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// Binary is the registry server used; tests skip when it is absent.
const Binary = "/usr/bin/docker-registry"

// Start launches a registry and returns its "127.0.0.1:PORT". The server is
// stopped when the test ends. The test is skipped if the binary is missing.
func Start(t testing.TB) string {
	t.Helper()
	return StartServer(t, Config{}).Host
}

// Config adjusts the server StartServer runs.
type Config struct {
	// Htpasswd, when set, is the content of an htpasswd file (bcrypt
	// hashes): the registry then requires HTTP basic auth.
	Htpasswd string
}

// Server is a running registry that a test may stop and start again (same
// address, same storage), e.g. to take it away in the middle of a push.
type Server struct {
	Host    string
	cfgPath string
	logPath string
	mu      sync.Mutex
	stop    func()
}

// StartServer launches a registry like Start and returns it for Stop and
// Restart. It is stopped when the test ends.
func StartServer(t testing.TB, c Config) *Server {
	t.Helper()
	if _, err := os.Stat(Binary); err != nil {
		t.Skipf("registry server not installed: %v", err)
	}
	var lastErr error
	// A port found free can be taken before the server binds it; try again.
	for attempt := 0; attempt < 3; attempt++ {
		s, err := start(t, c)
		if err == nil {
			t.Cleanup(s.Stop)
			return s
		}
		lastErr = err
	}
	t.Fatalf("starting %s: %v", Binary, lastErr)
	return nil
}

func start(t testing.TB, c Config) (*Server, error) {
	dir := t.TempDir()
	host, err := freePort()
	if err != nil {
		return nil, err
	}
	auth := ""
	if c.Htpasswd != "" {
		pw := filepath.Join(dir, "htpasswd")
		if err := os.WriteFile(pw, []byte(c.Htpasswd), 0o644); err != nil {
			return nil, err
		}
		auth = fmt.Sprintf("auth:\n  htpasswd:\n    realm: diffah-test\n    path: %s\n", pw)
	}
	cfg := fmt.Sprintf(`version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
http:
  addr: %s
%s`, filepath.Join(dir, "storage"), host, auth)
	s := &Server{Host: host, cfgPath: filepath.Join(dir, "config.yml"), logPath: filepath.Join(dir, "registry.log")}
	if err := os.WriteFile(s.cfgPath, []byte(cfg), 0o644); err != nil {
		return nil, err
	}
	if err := s.launch(); err != nil {
		return nil, err
	}
	return s, nil
}

// launch starts the server process and waits until it answers.
func (s *Server) launch() error {
	logf, err := os.OpenFile(s.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cmd := exec.Command(Binary, "serve", s.cfgPath)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait(); logf.Close() }()
	stop := func() {
		cmd.Process.Kill()
		<-exited
	}
	if err := waitReady(s.Host, exited); err != nil {
		stop()
		out, _ := os.ReadFile(s.logPath)
		return fmt.Errorf("%w; log:\n%s", err, out)
	}
	s.mu.Lock()
	s.stop = stop
	s.mu.Unlock()
	return nil
}

// Stop kills the server (like a crash: no graceful shutdown). Stopping a
// stopped server does nothing.
func (s *Server) Stop() {
	s.mu.Lock()
	stop := s.stop
	s.stop = nil
	s.mu.Unlock()
	if stop != nil {
		stop()
	}
}

// Restart starts a stopped server again on the same address and storage.
func (s *Server) Restart() error {
	s.Stop()
	return s.launch()
}

func freePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// waitReady polls the API root until the server answers.
func waitReady(host string, exited <-chan error) error {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+host+"/v2/", nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			// 401: up, and asking for the credentials it was configured with.
			if resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusUnauthorized {
				return nil
			}
		}
		select {
		case err := <-exited:
			return fmt.Errorf("registry exited early: %v", err)
		case <-ctx.Done():
			return fmt.Errorf("registry on %s not ready: %v", host, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}
