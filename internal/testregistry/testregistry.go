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
	"testing"
	"time"
)

// Binary is the registry server used; tests skip when it is absent.
const Binary = "/usr/bin/docker-registry"

// Start launches a registry and returns its "127.0.0.1:PORT". The server is
// stopped when the test ends. The test is skipped if the binary is missing.
func Start(t testing.TB) string {
	t.Helper()
	if _, err := os.Stat(Binary); err != nil {
		t.Skipf("registry server not installed: %v", err)
	}
	var lastErr error
	// A port found free can be taken before the server binds it; try again.
	for attempt := 0; attempt < 3; attempt++ {
		host, err := start(t)
		if err == nil {
			return host
		}
		lastErr = err
	}
	t.Fatalf("starting %s: %v", Binary, lastErr)
	return ""
}

func start(t testing.TB) (string, error) {
	dir := t.TempDir()
	host, err := freePort()
	if err != nil {
		return "", err
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
`, filepath.Join(dir, "storage"), host)
	cfgPath := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		return "", err
	}
	logPath := filepath.Join(dir, "registry.log")
	logf, err := os.Create(logPath)
	if err != nil {
		return "", err
	}
	cmd := exec.Command(Binary, "serve", cfgPath)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return "", err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait(); logf.Close() }()
	stop := func() {
		cmd.Process.Kill()
		<-exited
	}
	if err := waitReady(host, exited); err != nil {
		stop()
		out, _ := os.ReadFile(logPath)
		return "", fmt.Errorf("%w; log:\n%s", err, out)
	}
	t.Cleanup(stop)
	return host, nil
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
			if resp.StatusCode == http.StatusOK {
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
