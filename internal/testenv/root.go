package testenv

import (
	"os"
	"os/exec"
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

// RequireTool skips when a command the test runs is missing, naming the
// package to install; under CI=true it fails instead (.ci/run installs it).
func RequireTool(t testing.TB, name, pkg string) {
	t.Helper()
	if _, err := exec.LookPath(name); err == nil {
		return
	}
	why := name + " is not installed (apt-get install " + pkg + ")"
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s, and CI=true forbids skipping", why)
	}
	t.Skip(why)
}
