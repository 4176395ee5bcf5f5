// Package decap runs the backend side of dsr-ipip: the XDP program that
// strips the outer header of IPIP packets addressed to this host, attached
// until the context ends.
package decap

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"go.uber.org/zap"

	"github.com/scmlb-xsk/scmlb-xsk/bpf"
	"github.com/scmlb-xsk/scmlb-xsk/control/netlink"
)

// Options configure a decap run.
type Options struct {
	Interface string       // the backend's interface facing the load balancer
	VIPs      []netip.Addr // only inner packets to these (none: any)
	Mode      bpf.Mode
}

// refresh is how often the host's addresses are re-read.
const refresh = 5 * time.Second

// Run attaches the program and keeps the host's addresses current until
// ctx ends; it then detaches and logs what it did.
func Run(ctx context.Context, o Options, log *zap.Logger) (err error) {
	log = log.Named("decap")
	ifc, err := netlink.InterfaceByName(o.Interface)
	if err != nil {
		return err
	}
	if ifc.XDPProgID != 0 {
		return fmt.Errorf("interface %s already has XDP program %d attached; remove it first (ip link set dev %s xdp off)",
			ifc.Name, ifc.XDPProgID, ifc.Name)
	}
	for _, v := range o.VIPs {
		if !v.Is4() {
			return fmt.Errorf("--vip %s: want an IPv4 address", v)
		}
	}
	d, err := bpf.LoadDecap()
	if err != nil {
		return err
	}
	defer func() {
		if st, serr := d.Stats(); serr == nil {
			log.Info("stopped; xdp detached", zap.Any("packets", st))
		}
		err = errors.Join(err, d.Close())
	}()
	if err := setAddrs(d); err != nil {
		return err
	}
	if err := d.SetVIPs(o.VIPs); err != nil {
		return err
	}
	if err := d.Attach(ifc.Index, o.Mode); err != nil {
		if o.Mode == bpf.Native {
			return fmt.Errorf("%w (the driver may lack native XDP: try --xdp-mode generic)", err)
		}
		return err
	}
	log.Info("decapsulating IPIP to this host", zap.String("if", ifc.Name), zap.Stringer("mode", o.Mode), zap.Any("vips", o.VIPs))
	t := time.NewTicker(refresh)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if err := setAddrs(d); err != nil {
				log.Warn("refresh host addresses", zap.Error(err))
			}
		}
	}
}

func setAddrs(d *bpf.Decap) error {
	addrs, err := netlink.AllAddrs()
	if err != nil {
		return err
	}
	return d.SetAddrs(addrs)
}
