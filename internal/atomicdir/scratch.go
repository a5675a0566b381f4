package atomicdir

import (
	"os"

	"github.com/diffah/diffah/fault"
)

// Scratch creates an anonymous temporary file in dir ("" = the system's
// temporary directory): unlinked at once, so the open descriptor alone
// keeps the data and nothing is left behind however the process ends.
// It is the one home of diffah's scratch files (spooled layers and blobs,
// patch payloads being computed); what names them in errors.
func Scratch(dir, what string) (*os.File, error) {
	f, err := os.CreateTemp(dir, "diffah-scratch-*")
	if err != nil {
		return nil, fault.Errorf(fault.Env, "%s: creating a temporary file: %w", what, err)
	}
	if err := os.Remove(f.Name()); err != nil {
		f.Close()
		return nil, fault.Errorf(fault.Env, "%s: unlinking temporary file %s: %w", what, f.Name(), err)
	}
	return f, nil
}
