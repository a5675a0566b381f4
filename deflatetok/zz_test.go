package deflatetok

import (
	"os"
	"testing"
)

func TestZZ(t *testing.T) {
	content, _ := os.ReadFile(os.Getenv("ZZ_TAR"))
	blob := compressWith(t, []string{"libdeflate-gzip", "-" + os.Getenv("ZZ_L"), "-c"}, content)
	n, st := modelRoundTrip(t, blob, content, Levels[LibdeflateLevel+int(os.Getenv("ZZ_L")[0]-'0')])
	t.Logf("%d %+v", n, st)
}
