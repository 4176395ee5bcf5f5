package daemon

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/scmlb-xsk/scmlb-xsk/dataplane/packet"
)

func netHW(m packet.MAC) net.HardwareAddr { return net.HardwareAddr(m[:]) }

func macOf(b []byte) packet.MAC { return packet.MAC(b) }

// xdpHolder finds the process that holds an XDP bpf_link of program progID,
// by its fdinfo (as bpftool does), so a second daemon can name the first.
func xdpHolder(progID uint32) (pid int, ok bool) {
	want := fmt.Sprintf("prog_id:\t%d\n", progID)
	fds, _ := filepath.Glob("/proc/[0-9]*/fdinfo/*")
	for _, f := range fds {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		s := string(b)
		if strings.Contains(s, "link_type:\txdp\n") && strings.Contains(s, want) {
			pid, err := strconv.Atoi(strings.Split(f, "/")[2])
			if err == nil && pid != os.Getpid() {
				return pid, true
			}
		}
	}
	return 0, false
}
