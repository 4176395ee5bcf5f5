package daemon

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"

	"go.uber.org/zap"
)

// HoldCommand is the hidden subcommand a daemon stopping with
// --restart-hold starts to keep its XDP programs attached.
const HoldCommand = "hold-xdp"

// isHolder says whether pid is such a holder.
func isHolder(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	return err == nil && strings.Contains(string(b), "\x00"+HoldCommand+"\x00")
}

// holdXDP hands the XDP links to a holder process for --restart-hold:
// the programs drop what they would steer until the next daemon takes
// them over (or the hold ends), instead of letting the kernel answer the
// flows' packets. False when that failed: the caller detaches.
func (d *Daemon) holdXDP() bool {
	files, err := d.prog.Hold(d.opts.RestartHold)
	if err == nil {
		cmd := exec.Command("/proc/self/exe", HoldCommand, "--for", d.opts.RestartHold.String())
		cmd.ExtraFiles = files
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true} // outlives this process's group
		err = cmd.Start()
		if err == nil {
			d.log.Info("xdp held for the next daemon", zap.Duration("hold", d.opts.RestartHold), zap.Int("holder_pid", cmd.Process.Pid))
			cmd.Process.Release()
		}
	}
	for _, f := range files {
		f.Close()
	}
	if err != nil {
		d.log.Error("could not hold xdp for the restart; detaching", zap.Error(err))
		return false
	}
	return true
}

// releaseHolders ends the holders whose links this daemon took over.
func (d *Daemon) releaseHolders() {
	for _, pid := range d.holders {
		if err := syscall.Kill(pid, syscall.SIGTERM); err == nil {
			d.log.Info("took over the held xdp program", zap.Int("holder_pid", pid))
		}
	}
	d.holders = nil
}
