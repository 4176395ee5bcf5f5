package testenv

import (
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Legacy ethtool commands (linux/ethtool.h), still mapped onto netdev features.
const (
	ethtoolSTXCSUM = 0x17 // TX checksum offload
	ethtoolSTSO    = 0x1f // TCP segmentation offload, which needs TX checksums
)

type ethtoolValue struct {
	cmd  uint32
	data uint32
}

type ifreqData struct {
	name [unix.IFNAMSIZ]byte
	data unsafe.Pointer
	_    [16]byte // ifreq union padding
}

// txOffloadOff is `ethtool -K ifname tx off` (which also turns TSO off)
// without needing ethtool on the machine.
func txOffloadOff(ns *NS, ifname string) error {
	return ns.Do(func() error {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("ethtool socket: %w", err)
		}
		defer unix.Close(fd)
		for _, cmd := range []uint32{ethtoolSTSO, ethtoolSTXCSUM} {
			v := ethtoolValue{cmd: cmd}
			var req ifreqData
			copy(req.name[:], ifname)
			req.data = unsafe.Pointer(&v)
			if _, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SIOCETHTOOL, uintptr(unsafe.Pointer(&req))); errno != 0 {
				return fmt.Errorf("ethtool command %#x on %s in %s: %w", cmd, ifname, ns.Name, errno)
			}
		}
		return nil
	})
}
