package testpodman

import (
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
)

// TestStartStop: the service answers the Engine API on its socket, the
// CLI shares its storage, and when the test ends the service is stopped
// and its directory removed.
func TestStartStop(t *testing.T) {
	var s *Service
	t.Run("running", func(t *testing.T) {
		s = Start(t)
		resp, err := Client(s.Socket).Get("http://podman/version")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(b), "Podman") {
			t.Fatalf("GET /version: %s %s", resp.Status, b)
		}
		if !strings.HasPrefix(s.Host, "unix://") || len(s.Socket) > 100 {
			t.Fatalf("host %q, socket %q", s.Host, s.Socket)
		}
		if out := s.Podman(t, "info", "--format", "{{.Store.GraphDriverName}}"); strings.TrimSpace(string(out)) != "vfs" {
			t.Fatalf("storage driver %q, want vfs", out)
		}
		if _, err := s.TryPodman("image", "exists", "no/such:image"); err == nil {
			t.Fatal("TryPodman reported success for a failing command")
		}
	})
	if s == nil {
		return // skipped
	}
	if _, err := os.Stat(s.dir); !os.IsNotExist(err) {
		t.Fatalf("service directory %s left behind: %v", s.dir, err)
	}
	if _, err := Client(s.Socket).Get("http://podman/_ping"); err == nil {
		t.Fatal("the service still answers after the test")
	}
}
