package testenv

import (
	"fmt"
	"net"
	"net/netip"
	"time"

	"golang.org/x/sys/unix"

	"github.com/scmlb-xsk/scmlb-xsk/internal/fixture"
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

// SendFrames sends ready-made Ethernet frames out of ifname inside the
// namespace through a packet socket: nothing is routed, so a test can put
// any source address on the wire towards any MAC (a spoofer's view).
func (n *NS) SendFrames(ifname string, frames [][]byte) error {
	return n.Do(func() error {
		ifc, err := net.InterfaceByName(ifname)
		if err != nil {
			return err
		}
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("packet socket: %w", err)
		}
		defer unix.Close(fd)
		to := &unix.SockaddrLinklayer{Ifindex: ifc.Index, Halen: 6}
		for i, f := range frames {
			copy(to.Addr[:], f[:6])
			if err := unix.Sendto(fd, f, 0, to); err != nil {
				return fmt.Errorf("send frame %d of %d: %w", i+1, len(frames), err)
			}
		}
		return nil
	})
}

// MAC returns the hardware address of ifname inside the namespace.
func (n *NS) MAC(ifname string) (net.HardwareAddr, error) {
	var mac net.HardwareAddr
	err := n.Do(func() error {
		ifc, err := net.InterfaceByName(ifname)
		if err == nil {
			mac = ifc.HardwareAddr
		}
		return err
	})
	return mac, err
}

// Ping sends one ICMP (ICMPv6 for an IPv6 dst) echo request to dst from
// inside the namespace and waits up to timeout for the reply (there is no
// ping binary to rely on).
func (n *NS) Ping(dst netip.Addr, timeout time.Duration) error {
	return n.Do(func() error {
		family, proto, req := unix.AF_INET, unix.IPPROTO_ICMP, []byte{8, 0, 0, 0, 0x12, 0x34, 0, 1, 'p', 'i', 'n', 'g'}
		var sa unix.Sockaddr
		if dst.Is6() {
			// The kernel computes an ICMPv6 raw socket's checksum itself.
			family, proto, req[0] = unix.AF_INET6, unix.IPPROTO_ICMPV6, 128
			sa = &unix.SockaddrInet6{Addr: dst.As16()}
		} else {
			sa = &unix.SockaddrInet4{Addr: dst.As4()}
			c := ^fixture.Sum(0, req)
			req[2], req[3] = byte(c>>8), byte(c)
		}
		fd, err := unix.Socket(family, unix.SOCK_RAW|unix.SOCK_CLOEXEC, proto)
		if err != nil {
			return fmt.Errorf("icmp socket: %w", err)
		}
		defer unix.Close(fd)
		tv := unix.NsecToTimeval(timeout.Nanoseconds())
		unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
		if err := unix.Sendto(fd, req, 0, sa); err != nil {
			return fmt.Errorf("send echo: %w", err)
		}
		buf := make([]byte, 1500)
		deadline := time.Now().Add(timeout)
		for time.Now().Before(deadline) {
			k, from, err := unix.Recvfrom(fd, buf, 0)
			if err != nil {
				return fmt.Errorf("no echo reply from %s: %w", dst, err)
			}
			// An IPv4 raw socket hands over the IP header, an IPv6 one not.
			var src netip.Addr
			off, reply := 0, byte(0)
			switch sa := from.(type) {
			case *unix.SockaddrInet4:
				src, off = netip.AddrFrom4(sa.Addr), int(buf[0]&0x0f)*4
			case *unix.SockaddrInet6:
				src, reply = netip.AddrFrom16(sa.Addr), 129
			}
			if src == dst && k >= off+8 && buf[off] == reply && buf[off+4] == 0x12 && buf[off+5] == 0x34 {
				return nil
			}
		}
		return fmt.Errorf("no echo reply from %s", dst)
	})
}
