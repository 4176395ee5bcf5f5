package testenv

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// BuildDaemon compiles cmd/scmlb-xsk into dir and returns the binary path.
func BuildDaemon(dir string) (string, error) {
	mod, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	bin := filepath.Join(dir, "scmlb-xsk")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/scmlb-xsk")
	cmd.Dir = filepath.Dir(strings.TrimSpace(string(mod)))
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build scmlb-xsk: %w: %s", err, out)
	}
	return bin, nil
}

// Daemon is a scmlb-xsk process in a namespace.
type Daemon struct {
	cmd  *exec.Cmd
	out  *syncBuffer
	done chan struct{}
	err  error
}

// StartDaemon runs `bin args...` inside ns; it is killed on cleanup if still running.
func StartDaemon(c Cleaner, ns *NS, bin string, args ...string) (*Daemon, error) {
	d := &Daemon{out: &syncBuffer{}, done: make(chan struct{})}
	// `ip netns exec` execs the binary itself, so signals reach the daemon.
	d.cmd = ns.Command(bin, args...)
	d.cmd.Stdout, d.cmd.Stderr = d.out, d.out
	if os.Getenv("SCMLB_TEST_VERBOSE") != "" {
		d.cmd.Stdout, d.cmd.Stderr = os.Stderr, os.Stderr
	}
	if err := d.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	go func() {
		d.err = d.cmd.Wait()
		close(d.done)
	}()
	c.Cleanup(func() {
		select {
		case <-d.done:
		default:
			d.cmd.Process.Kill()
			<-d.done
		}
	})
	return d, nil
}

// Stop sends sig (SIGTERM or SIGINT) and waits up to timeout for a clean exit.
func (d *Daemon) Stop(sig os.Signal, timeout time.Duration) error {
	d.cmd.Process.Signal(sig)
	select {
	case <-d.done:
		return d.err
	case <-time.After(timeout):
		d.cmd.Process.Kill()
		<-d.done
		return fmt.Errorf("daemon did not exit within %s after %v", timeout, sig)
	}
}

// Kill sends SIGKILL and waits for the process to end.
func (d *Daemon) Kill() {
	d.cmd.Process.Kill()
	<-d.done
}

// Exited reports whether the process has ended, and how.
func (d *Daemon) Exited() (bool, error) {
	select {
	case <-d.done:
		return true, d.err
	default:
		return false, nil
	}
}

// Output is what the daemon logged so far.
func (d *Daemon) Output() string { return d.out.String() }

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
