package daemon

import (
	"errors"
	"io"
	"os"
	"time"

	"go.uber.org/zap"

	"github.com/scmlb-xsk/scmlb-xsk/control/config"
)

// snapshotPath is where tracked flows are kept across a restart: beside
// the state file ("" without one).
func (d *Daemon) snapshotPath() string {
	if d.opts.StatePath == "" {
		return ""
	}
	return d.opts.StatePath + ".conntrack"
}

// restoreConntrack loads the flows the last run saved, once the tables
// are installed and before any worker runs. The file is consumed: a
// snapshot that does not read whole is reported, kept aside as
// .corrupt for inspection, and ignored; it never stops the start.
func (d *Daemon) restoreConntrack() {
	path := d.snapshotPath()
	d.snapshotDue = path != ""
	if path == "" {
		return
	}
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return
	}
	if err != nil {
		d.log.Warn("conntrack snapshot not read; starting with no flows", zap.String("file", path), zap.Error(err))
		return
	}
	restored, dropped, err := d.eng.RestoreSnapshot(f, time.Now().UnixNano())
	f.Close()
	if err != nil {
		d.log.Warn("conntrack snapshot ignored; starting with no flows", zap.String("file", path), zap.Error(err))
		if err := os.Rename(path, path+".corrupt"); err != nil {
			d.log.Warn("set the bad snapshot aside", zap.Error(err))
		}
		return
	}
	os.Remove(path)
	d.log.Info("conntrack restored", zap.String("file", path), zap.Int("flows", restored),
		zap.Int("dropped", dropped))
}

// saveConntrack writes the tracked flows for the next start; the workers
// have stopped.
func (d *Daemon) saveConntrack() {
	if !d.snapshotDue {
		return
	}
	path := d.snapshotPath()
	start := time.Now()
	var n int
	err := config.WriteAtomic(path, func(w io.Writer) (err error) {
		n, err = d.eng.WriteSnapshot(w)
		return err
	})
	if err != nil {
		d.log.Error("conntrack not saved", zap.String("file", path), zap.Error(err))
		return
	}
	d.log.Info("conntrack saved", zap.String("file", path), zap.Int("flows", n), zap.Duration("took", time.Since(start)))
}
