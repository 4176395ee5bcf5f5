package daemon

import (
	"bytes"
	"fmt"
	"os"

	"go.uber.org/zap"

	"github.com/scmlb-xsk/scmlb-xsk/control/api"
	"github.com/scmlb-xsk/scmlb-xsk/control/declare"
)

// readConfig reads and checks --config ("" when there is none).
func (d *Daemon) readConfig() (string, error) {
	if d.opts.ConfigPath == "" {
		return "", nil
	}
	b, err := os.ReadFile(d.opts.ConfigPath)
	if err != nil {
		return "", fmt.Errorf("--config: %w", err)
	}
	if _, err := declare.Parse(bytes.NewReader(b)); err != nil {
		return "", fmt.Errorf("--config %s: %w", d.opts.ConfigPath, err)
	}
	return string(b), nil
}

// reloadConfig reads --config again and applies it.
func (d *Daemon) reloadConfig() error {
	y, err := d.readConfig()
	if err != nil {
		return err
	}
	return d.applyConfig(y)
}

// applyConfig moves the state to y, --config's text, all or nothing.
func (d *Daemon) applyConfig(y string) error {
	res, err := d.core.Apply(api.ApplyRequest{YAML: y})
	if err != nil {
		return fmt.Errorf("--config %s: %w", d.opts.ConfigPath, err)
	}
	d.log.Info("configuration file applied", zap.String("file", d.opts.ConfigPath), zap.Int("changes", len(res.Changes)),
		zap.Strings("change", res.Changes))
	return nil
}
