package netlink

import (
	"errors"
	"fmt"
	"path/filepath"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ethtool commands (linux/ethtool.h).
const (
	ethtoolGCHANNELS  = 0x3c
	ethtoolGRXFHINDIR = 0x38 // RSS indirection table
	ethtoolSTXCSUM    = 0x17 // TX checksum offload
	ethtoolSTSO       = 0x1f // TCP segmentation offload, which needs TX checksums
	ethtoolGGRO       = 0x2b // generic receive offload
	ethtoolSGRO       = 0x2c
)

type ethtoolChannels struct {
	cmd                                         uint32
	maxRx, maxTx, maxOther, maxCombined         uint32
	rxCount, txCount, otherCount, combinedCount uint32
}

type ethtoolValue struct {
	cmd  uint32
	data uint32
}

type ifreqData struct {
	name [unix.IFNAMSIZ]byte
	data unsafe.Pointer
	_    [16]byte // ifreq union padding
}

// ethtool runs one SIOCETHTOOL command on ifname in the calling thread's
// network namespace; data starts with the command number.
func ethtool(ifname string, data unsafe.Pointer) error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("ethtool socket: %w", err)
	}
	defer unix.Close(fd)
	var req ifreqData
	copy(req.name[:], ifname)
	req.data = data
	if _, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SIOCETHTOOL, uintptr(unsafe.Pointer(&req))); errno != 0 {
		return errno
	}
	return nil
}

// rxQueues counts the RX queues in use. Netlink's IFLA_NUM_RX_QUEUES is how
// many were allocated (veth allocates one per possible CPU but uses one),
// and AF_XDP binds only below the real count. ETHTOOL_GCHANNELS gives it
// (combined + rx-only channels); drivers without it fall back to sysfs,
// which is right when sysfs belongs to the current namespace.
func rxQueues(name string, allocated int) int {
	ch := ethtoolChannels{cmd: ethtoolGCHANNELS}
	if err := ethtool(name, unsafe.Pointer(&ch)); err == nil && ch.combinedCount+ch.rxCount > 0 {
		return int(ch.combinedCount + ch.rxCount)
	}
	if m, _ := filepath.Glob(filepath.Join("/sys/class/net", name, "queues", "rx-*")); len(m) > 0 {
		return len(m)
	}
	return max(allocated, 1)
}

// DisableTxOffload is `ethtool -K ifname tx off` (TX checksum offload and
// TSO). Packets a local stack sends over veth otherwise carry only a partial
// checksum, which AF_XDP cannot tell apart from a complete one.
func DisableTxOffload(ifname string) error {
	var errs []error
	for _, cmd := range []uint32{ethtoolSTSO, ethtoolSTXCSUM} {
		v := ethtoolValue{cmd: cmd}
		if err := ethtool(ifname, unsafe.Pointer(&v)); err != nil {
			errs = append(errs, fmt.Errorf("ethtool command %#x on %s: %w", cmd, ifname, err))
		}
	}
	return errors.Join(errs...)
}

// RSSQueues reports how many RX queues RSS spreads flows over: the highest
// queue in the indirection table, plus one. ok is false when the driver has
// no table (veth), in which case every queue may receive.
func RSSQueues(name string) (n int, ok bool) {
	hdr := struct{ cmd, size uint32 }{cmd: ethtoolGRXFHINDIR}
	if err := ethtool(name, unsafe.Pointer(&hdr)); err != nil || hdr.size == 0 || hdr.size > 1<<16 {
		return 0, false
	}
	buf := make([]uint32, 2+hdr.size)
	buf[0], buf[1] = ethtoolGRXFHINDIR, hdr.size
	if err := ethtool(name, unsafe.Pointer(&buf[0])); err != nil {
		return 0, false
	}
	for _, q := range buf[2:] {
		n = max(n, int(q)+1)
	}
	return n, true
}

// SetGRO is `ethtool -K ifname gro on|off`; it reports what the device has
// afterwards (a device may refuse).
func SetGRO(ifname string, on bool) (bool, error) {
	v := ethtoolValue{cmd: ethtoolSGRO}
	if on {
		v.data = 1
	}
	if err := ethtool(ifname, unsafe.Pointer(&v)); err != nil {
		return false, fmt.Errorf("ethtool -K %s gro: %w", ifname, err)
	}
	v = ethtoolValue{cmd: ethtoolGGRO}
	if err := ethtool(ifname, unsafe.Pointer(&v)); err != nil {
		return false, fmt.Errorf("ethtool -k %s gro: %w", ifname, err)
	}
	return v.data != 0, nil
}

// DisableTSO is `ethtool -K ifname tso off`.
func DisableTSO(ifname string) error {
	v := ethtoolValue{cmd: ethtoolSTSO}
	if err := ethtool(ifname, unsafe.Pointer(&v)); err != nil {
		return fmt.Errorf("ethtool -K %s tso off: %w", ifname, err)
	}
	return nil
}
