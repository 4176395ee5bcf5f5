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

// Process is a command running in a namespace, killed on cleanup if still
// running, its output kept.
type Process struct {
	cmd  *exec.Cmd
	out  *syncBuffer
	done chan struct{}
	err  error
}

// StartProcess runs bin args... inside ns until cleanup; name only labels
// errors.
func StartProcess(c Cleaner, ns *NS, name, bin string, args ...string) (*Process, error) {
	p := &Process{out: &syncBuffer{}, done: make(chan struct{})}
	// `ip netns exec` execs the binary itself, so signals reach it.
	p.cmd = ns.Command(bin, args...)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if os.Getenv("SCMLB_TEST_VERBOSE") != "" {
		p.cmd.Stdout, p.cmd.Stderr = os.Stderr, os.Stderr
	}
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	c.Cleanup(func() {
		select {
		case <-p.done:
		default:
			p.cmd.Process.Kill()
			<-p.done
		}
	})
	return p, nil
}

// Daemon is a scmlb-xsk process in a namespace.
type Daemon struct {
	*Process
	Bin    string
	Socket string // API socket
	State  string // state file
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
	args := append([]string{"--socket", socket, "run", "--state-file", state}, runArgs...)
	p, err := StartProcess(c, ns, "scmlb-xsk", bin, args...)
	if err != nil {
		return nil, err
	}
	return &Daemon{Process: p, Bin: bin, Socket: socket, State: state}, nil
}

// Stop sends sig (SIGTERM or SIGINT) and waits up to timeout for a clean exit.
func (p *Process) Stop(sig os.Signal, timeout time.Duration) error {
	p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
		return p.err
	case <-time.After(timeout):
		p.cmd.Process.Kill()
		<-p.done
		return fmt.Errorf("daemon did not exit within %s after %v", timeout, sig)
	}
}

// Signal sends sig without waiting.
func (p *Process) Signal(sig os.Signal) error { return p.cmd.Process.Signal(sig) }

// Pid is the daemon's process id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Wait waits up to timeout for the process to end by itself and returns
// how it ended.
func (p *Process) Wait(timeout time.Duration) error {
	select {
	case <-p.done:
		return p.err
	case <-time.After(timeout):
		return fmt.Errorf("still running after %s", timeout)
	}
}

// Kill sends SIGKILL and waits for the process to end.
func (p *Process) Kill() {
	p.cmd.Process.Kill()
	<-p.done
}

// Exited reports whether the process has ended, and how.
func (p *Process) Exited() (bool, error) {
	select {
	case <-p.done:
		return true, p.err
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
func (p *Process) Output() string { return p.out.String() }

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
