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
	Bin    string
	Socket string // API socket
	State  string // state file
	cmd    *exec.Cmd
	out    *syncBuffer
	done   chan struct{}
	err    error
}

// StartDaemon runs `bin --socket dir/api.sock run --state-file dir/state.json
// runArgs...` inside ns, so tests never touch the default paths and a
// restart with the same dir restores the same state. It is killed on
// cleanup if still running.
func StartDaemon(c Cleaner, ns *NS, bin, dir string, runArgs ...string) (*Daemon, error) {
	return StartDaemonAt(c, ns, bin, filepath.Join(dir, "api.sock"), filepath.Join(dir, "state.json"), runArgs...)
}

// StartDaemonAt is StartDaemon with the socket and state file paths given
// one by one (two daemons sharing a state file, say).
func StartDaemonAt(c Cleaner, ns *NS, bin, socket, state string, runArgs ...string) (*Daemon, error) {
	d := &Daemon{Bin: bin, Socket: socket, State: state, out: &syncBuffer{}, done: make(chan struct{})}
	args := append([]string{"--socket", d.Socket, "run", "--state-file", d.State}, runArgs...)
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

// Signal sends sig without waiting.
func (d *Daemon) Signal(sig os.Signal) error { return d.cmd.Process.Signal(sig) }

// Pid is the daemon's process id.
func (d *Daemon) Pid() int { return d.cmd.Process.Pid }

// Wait waits up to timeout for the process to end by itself and returns
// how it ended.
func (d *Daemon) Wait(timeout time.Duration) error {
	select {
	case <-d.done:
		return d.err
	case <-time.After(timeout):
		return fmt.Errorf("still running after %s", timeout)
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

// CLI runs a client command against this daemon's socket (from any
// namespace: the socket is a file) and returns its standard output.
func (d *Daemon) CLI(args ...string) (string, error) {
	cmd := exec.Command(d.Bin, append([]string{"--socket", d.Socket}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return string(out), fmt.Errorf("scmlb-xsk %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return string(out), nil
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
