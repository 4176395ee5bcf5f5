package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// lockFile holds an exclusive flock on the state file's lock file for the
// life of a daemon: two daemons writing one state file would hand out the
// same ids and lose each other's changes. The lock file holds the pid, so
// the second one can say who has it. The kernel drops the lock when the
// process dies, however it dies.
type lockFile struct{ f *os.File }

func lock(path string) (*lockFile, error) {
	name := path + ".lock"
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("state dir: %w", err)
	}
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("state file lock %s: %w", name, err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		b, _ := os.ReadFile(name)
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			holder := "another process"
			if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
				holder = fmt.Sprintf("another scmlb-xsk (pid %d)", pid)
			}
			return nil, fmt.Errorf("state file %s is in use by %s; stop it, or give this daemon its own --state-file", path, holder)
		}
		return nil, fmt.Errorf("lock %s: %w", name, err)
	}
	if err := f.Truncate(0); err == nil {
		f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return &lockFile{f: f}, nil
}

// unlock releases the lock; the lock file stays (removing it would race
// with a daemon that just opened it).
func (l *lockFile) unlock() error {
	if l == nil {
		return nil
	}
	return l.f.Close()
}
