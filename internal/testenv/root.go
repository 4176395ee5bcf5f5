package testenv

import (
	"os"
	"testing"
)

// RequireRoot skips a privileged test when not root, naming the reason; in
// CI (CI=true) a skip would hide a broken pipeline, so it fails instead.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	const why = "needs root for network namespaces, XDP and AF_XDP"
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s, and CI=true forbids skipping", why)
	}
	t.Skip(why)
}
