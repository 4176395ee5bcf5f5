package e2e

import (
	"fmt"
	"os"
	"testing"

	"github.com/scmlb-xsk/scmlb-xsk/internal/testenv"
)

var daemonBin string

func TestMain(m *testing.M) {
	code := func() int {
		if os.Geteuid() == 0 {
			dir, err := os.MkdirTemp("", "scmlb-e2e")
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 1
			}
			defer os.RemoveAll(dir)
			if daemonBin, err = testenv.BuildDaemon(dir); err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 1
			}
		}
		return m.Run()
	}()
	os.Exit(code)
}
