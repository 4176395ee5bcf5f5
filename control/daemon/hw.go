package daemon

import (
	"net"

	"github.com/scmlb-xsk/scmlb-xsk/dataplane/packet"
)

func netHW(m packet.MAC) net.HardwareAddr { return net.HardwareAddr(m[:]) }

func macOf(b []byte) packet.MAC { return packet.MAC(b) }
