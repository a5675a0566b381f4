package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// helpSkips are examples that cannot run here as written, and why.
var helpSkips = map[string]string{
	"docker://":      "needs a registry",
	"docker-daemon:": "needs a container engine (daemon.txtar and TestDaemon* run them against Podman)",
	"...":            "a flag sketch, not a command",
	"/media/":        "a removable disk",
	"/scratch":       "a site's scratch disk",
	"/tmp/":          "an absolute path outside the test",
	"ssh ":           "a remote site",
	"split ":         "writes 4 GB parts",
	"app.dlt.part":   "parts written by split",
	"{":              "a multi-line shell group",
	"}":              "a multi-line shell group",
	// the layout ./app-v2 of these examples is another delta than app.dlt
	"--platform linux/arm64 --baseline oci:./multi-v1": "needs an arm64 delta as app-v2/app.dlt",
	"docker-archive:app-v1.tar":                        "needs a Docker-typed baseline under app-v1",
}

var exampleComment = regexp.MustCompile(`(\s+#\s.*|\s{2,}\(.*\))$`)

// TestHelpExamplesRun runs every example of every --help, as written,
// with the built binary on PATH, in a fresh directory holding what the
// examples name (app-v1, app-v2, plan.json, app.dlt, vendor.key, ...),
// built from the fixtures. An example must exit 0 (diff: 0 or 1).
func TestHelpExamplesRun(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs every example")
	}
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("no bash")
	}
	fx := fixtures(t)
	bin := buildBinary(t)
	path := filepath.Dir(bin) + string(os.PathListSeparator) + os.Getenv("PATH")
	world := t.TempDir()
	sh := func(dir, script string) (string, int) {
		c := exec.Command("bash", "-o", "pipefail", "-c", script)
		c.Dir, c.Env = dir, append(os.Environ(), "PATH="+path)
		var out bytes.Buffer
		c.Stdout, c.Stderr = &out, &out
		err := c.Run()
		if ee, ok := err.(*exec.ExitError); ok {
			return out.String(), ee.ExitCode()
		} else if err != nil {
			return err.Error(), -1
		}
		return out.String(), 0
	}
	must := func(script string) {
		t.Helper()
		if out, code := sh(world, script); code != 0 {
			t.Fatalf("setup %q: exit %d: %s", script, code, out)
		}
	}
	for to, from := range map[string]string{"app-v1": "v1", "app-v2": "v2", "multi-v1": "multi-v1", "multi-v2": "multi-v2", "docker-v1": "docker-v1", "docker-v2": "docker-v2",
		"a-v1": "bundle/svc-a-v1", "a-v2": "bundle/svc-a-v2", "b-v1": "bundle/svc-b-v1", "b-v2": "bundle/svc-b-v2", "new-v1": "bundle/svc-c-v2"} {
		must("cp -r " + filepath.Join(fx, from) + " " + to)
	}
	var idx struct{ Manifests []struct{ Digest string } }
	raw, _ := os.ReadFile(filepath.Join(fx, "v1", "index.json"))
	if err := json.Unmarshal(raw, &idx); err != nil || len(idx.Manifests) == 0 {
		t.Fatalf("v1/index.json: %v", err)
	}
	m := filepath.Join(fx, "v1", "blobs", "sha256", strings.TrimPrefix(idx.Manifests[0].Digest, "sha256:"))
	must("cp " + m + " v1-manifest.json && cp " + m + " v1.json")
	must(`diffah keygen vendor.key vendor.pub &&
		diffah plan --target oci:./app-v2 --baseline oci:./app-v1 --name app > plan.json &&
		diffah plan --target oci:./a-v2 --baseline oci:./a-v1 --name a > a.json &&
		diffah plan --target oci:./b-v2 --baseline oci:./b-v1 --name b > b.json &&
		diffah pack --sign-key vendor.key -o app.dlt plan.json &&
		diffah pack --sign-key vendor.key -o bundle.dlt a.json b.json &&
		diffah export --target oci:./docker-v2 --baseline oci:./docker-v1 --name app -o docker.dlt &&
		diffah unpack -o unpacked-app app.dlt && diffah unpack -o unpacked-bundle bundle.dlt`)

	// What each command's examples expect to find (and not find).
	prepare := map[string]string{
		"pack":    "rm -f *.dlt;",
		"export":  "rm -f app.dlt new.dlt;",
		"unpack":  "rm -rf app-v2;",
		"resolve": "rm -rf app-v2 bundle && mv unpacked-app app-v2 && mv unpacked-bundle bundle;",
		"keygen":  "rm -rf vendor.key vendor.pub app.dlt;",
	}
	ran := 0
	for _, cmd := range []string{"plan", "pack", "unpack", "resolve", "export", "import", "inspect", "diff", "keygen", "version"} {
		var help, errb bytes.Buffer
		if code := run([]string{cmd, "--help"}, nil, &help, &errb); code != 0 {
			t.Fatalf("%s --help: exit %d", cmd, code)
		}
		// keygen's examples are one sequence; the others stand alone.
		seq := cmd == "keygen"
		var dir string
		for _, line := range strings.Split(help.String(), "\n") {
			ex := strings.TrimSpace(line)
			if !strings.HasPrefix(ex, "diffah ") && !strings.HasPrefix(ex, "cat ") {
				continue
			}
			if why := skipReason(ex); why != "" {
				t.Logf("skipped (%s): %s", why, ex)
				continue
			}
			ex = exampleComment.ReplaceAllString(ex, "")
			if dir == "" || !seq {
				dir = t.TempDir()
				if out, code := sh(dir, "cp -r "+world+"/. . && { "+prepare[cmd]+" true; }"); code != 0 {
					t.Fatalf("copy: %s", out)
				}
			}
			out, code := sh(dir, ex)
			ran++
			if code != 0 && !(cmd == "diff" && code == 1) {
				t.Errorf("`diffah %s --help` example exits %d: %s\n%s", cmd, code, ex, out)
			}
		}
	}
	if ran < 30 {
		t.Errorf("only %d examples ran", ran)
	}
}

func skipReason(ex string) string {
	for s, why := range helpSkips {
		if strings.Contains(ex, s) {
			return why
		}
	}
	return ""
}
