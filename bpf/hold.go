package bpf

import (
	"fmt"
	"os"
	"time"

	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"
)

// Hold makes the program drop what it would steer for d (VERDICT_HELD),
// and returns duplicates of its links' descriptors: a process that keeps
// them open keeps the program attached after this one exits. A restarting
// daemon hands them to a holder so that, while no worker runs, the kernel
// does not answer the flows' packets (senders retransmit); the next daemon
// takes the links over (Adopt) and replaces the program in place.
func (p *Program) Hold(d time.Duration) ([]*os.File, error) {
	now, err := monotonic()
	if err != nil {
		return nil, err
	}
	if err := p.objs.HoldUntilNs.Set(now + uint64(d)); err != nil {
		return nil, fmt.Errorf("set hold_until_ns: %w", err)
	}
	var files []*os.File
	fail := func(err error) ([]*os.File, error) {
		for _, f := range files {
			f.Close()
		}
		return nil, err
	}
	for ifindex, l := range p.links {
		fl, ok := l.(interface{ FD() int })
		if !ok {
			return fail(fmt.Errorf("the xdp link of ifindex %d has no descriptor", ifindex))
		}
		fd, err := unix.Dup(fl.FD())
		if err != nil {
			return fail(fmt.Errorf("dup the xdp link of ifindex %d: %w", ifindex, err))
		}
		files = append(files, os.NewFile(uintptr(fd), fmt.Sprintf("xdp-link-%d", ifindex)))
	}
	return files, nil
}

// Adopt takes over the XDP link that attaches program progID to ifindex
// (held by a restarting predecessor): Attach then replaces that program
// with this one in place. False when there is no such link.
func (p *Program) Adopt(ifindex int, progID uint32) (bool, error) {
	it := new(link.Iterator)
	defer it.Close()
	for it.Next() {
		info, err := it.Link.Info()
		if err != nil || info.XDP() == nil || int(info.XDP().Ifindex) != ifindex || uint32(info.Program) != progID {
			continue
		}
		l := it.Take()
		if p.held == nil {
			p.held = map[int]link.Link{}
		}
		p.held[ifindex] = l
		return true, nil
	}
	return false, it.Err()
}
