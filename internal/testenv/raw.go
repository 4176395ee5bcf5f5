package testenv

import (
	"fmt"
	"net/netip"

	"golang.org/x/sys/unix"
)

// SendIPv4 sends ready-made IPv4 packets (header included) from inside the
// namespace, routed like any packet to dst. Tests use it for bounded
// floods; the kernel fills in the IP header checksum.
func (n *NS) SendIPv4(dst netip.Addr, packets [][]byte) error {
	return n.Do(func() error {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_RAW)
		if err != nil {
			return fmt.Errorf("raw socket: %w", err)
		}
		defer unix.Close(fd)
		to := &unix.SockaddrInet4{Addr: dst.As4()}
		for i, p := range packets {
			if err := unix.Sendto(fd, p, 0, to); err != nil {
				return fmt.Errorf("send packet %d of %d: %w", i+1, len(packets), err)
			}
		}
		return nil
	})
}
