package conntrack

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"

	"github.com/scmlb-xsk/scmlb-xsk/dataplane/packet"
	"github.com/scmlb-xsk/scmlb-xsk/ipproto"
)

// A snapshot is the table's flows in a file, so a restarted daemon keeps
// them (full-NAT flows cannot be recovered from Maglev alone):
//
//	header  magic "SCMLBCT\n", version u16, record size u16, count u32, seed u64
//	records count x recordSize bytes (see putEntry)
//	trailer CRC-32C of header and records, u32
//
// Big-endian throughout. The table's hash seed travels with the flows: a
// full-NAT port was chosen so that its endpoint falls in the client's
// shard, which depends on the seed.
const (
	snapshotMagic   = "SCMLBCT\n"
	snapshotVersion = 1
	headerSize      = 8 + 2 + 2 + 4 + 8
	tupleSize       = 16 + 16 + 2 + 2 + 1
	recordSize      = 2*tupleSize + 4 + 8 + 8 + 8 + 2*8 + 6 + 1 + 1
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// ErrSnapshot wraps every reason a snapshot is refused: bad magic,
// version, size, checksum, or a truncated file.
var ErrSnapshot = errors.New("conntrack snapshot")

// WriteSnapshot writes every tracked flow to w. Call it with the workers
// stopped: flows change under the shard locks only one shard at a time.
// The records are encoded shard by shard under each lock (126 bytes a
// flow), not copied out as entries first: at a million flows that copy
// was most of the time.
func (t *Table) WriteSnapshot(w io.Writer) (int, error) {
	body := make([]byte, 0, max(t.count.Load(), 0)*recordSize)
	n := 0
	for si := range t.shards {
		s := &t.shards[si]
		s.mu.Lock()
		for i := range s.entries {
			if e := &s.entries[i]; e.inUse() {
				body = body[:len(body)+recordSize]
				putEntry(body[len(body)-recordSize:], e)
				n++
			}
		}
		s.mu.Unlock()
	}
	hdr := make([]byte, headerSize)
	copy(hdr, snapshotMagic)
	binary.BigEndian.PutUint16(hdr[8:], snapshotVersion)
	binary.BigEndian.PutUint16(hdr[10:], recordSize)
	binary.BigEndian.PutUint32(hdr[12:], uint32(n))
	binary.BigEndian.PutUint64(hdr[16:], t.seed)
	sum := crc32.Update(crc32.Checksum(hdr, crcTable), crcTable, body)
	bw := bufio.NewWriter(w)
	bw.Write(hdr)
	bw.Write(body)
	binary.Write(bw, binary.BigEndian, sum)
	return n, bw.Flush()
}

// Restore reads a snapshot into an empty table, before any packet: the
// table takes the snapshot's seed. Flows keep rejects, and flows idle past
// their state's timeout at now, are dropped and counted; so are flows the
// table has no room for, which keep accepted: those are handed to the
// OnRemove function, as every entry the table drops. A snapshot that is not whole and valid changes
// nothing and returns an error wrapping ErrSnapshot.
func (t *Table) Restore(r io.Reader, now int64, keep func(*Entry) bool) (restored, dropped int, err error) {
	if t.Len() != 0 {
		return 0, 0, fmt.Errorf("restore into a table of %d flows: it must be empty", t.Len())
	}
	br := bufio.NewReader(r)
	hdr := make([]byte, headerSize)
	if _, err := io.ReadFull(br, hdr); err != nil {
		return 0, 0, fmt.Errorf("%w: header: %v", ErrSnapshot, err)
	}
	switch {
	case string(hdr[:8]) != snapshotMagic:
		return 0, 0, fmt.Errorf("%w: not a snapshot (magic %q)", ErrSnapshot, hdr[:8])
	case binary.BigEndian.Uint16(hdr[8:]) != snapshotVersion:
		return 0, 0, fmt.Errorf("%w: version %d, this build reads %d", ErrSnapshot, binary.BigEndian.Uint16(hdr[8:]), snapshotVersion)
	case binary.BigEndian.Uint16(hdr[10:]) != recordSize:
		return 0, 0, fmt.Errorf("%w: record size %d, want %d", ErrSnapshot, binary.BigEndian.Uint16(hdr[10:]), recordSize)
	}
	count := int(binary.BigEndian.Uint32(hdr[12:]))
	if count > MaxCapacity {
		return 0, 0, fmt.Errorf("%w: %d flows, more than any table holds (%d)", ErrSnapshot, count, MaxCapacity)
	}
	// Every record is read and the checksum checked before the table is
	// touched; at most the table's capacity is held meanwhile (a snapshot
	// of a larger table loses the rest, counted as dropped).
	crc := crc32.New(crcTable)
	crc.Write(hdr)
	held := make([]Entry, 0, min(count, t.Capacity()))
	rec := make([]byte, recordSize)
	for i := range count {
		if _, err := io.ReadFull(br, rec); err != nil {
			return 0, 0, fmt.Errorf("%w: %d flows announced, file cut short at %d: %v", ErrSnapshot, count, i, err)
		}
		crc.Write(rec)
		var e Entry
		if len(held) == cap(held) || !getEntry(rec, &e) {
			dropped++
			continue
		}
		held = append(held, e)
	}
	var sum [4]byte
	if _, err := io.ReadFull(br, sum[:]); err != nil {
		return 0, 0, fmt.Errorf("%w: no checksum: %v", ErrSnapshot, err)
	}
	if _, err := br.ReadByte(); err != io.EOF {
		return 0, 0, fmt.Errorf("%w: data after the checksum", ErrSnapshot)
	}
	if got, want := binary.BigEndian.Uint32(sum[:]), crc.Sum32(); got != want {
		return 0, 0, fmt.Errorf("%w: checksum %#x, want %#x", ErrSnapshot, got, want)
	}
	t.seed = binary.BigEndian.Uint64(hdr[16:])
	for i := range held {
		e := &held[i]
		if now-e.LastSeen > t.timeouts[e.State] || keep != nil && !keep(e) {
			dropped++
			continue
		}
		if !t.restore(e) {
			// keep accepted it: what it took (a SNAT port) goes back as
			// for any entry the table drops.
			if t.onRemove != nil {
				t.onRemove(e)
			}
			dropped++
			continue
		}
		restored++
	}
	return restored, dropped, nil
}

// restore places an entry as it was, without eviction. Both directions
// must name the same shard: a full-NAT port chosen under another shard
// function (an older version's) would have its replies looked for in the
// wrong one.
func (t *Table) restore(e *Entry) bool {
	si := t.shardFor(&e.Fwd, false)
	if t.shardFor(&e.Rev, true) != si {
		return false
	}
	s := &t.shards[si]
	fh, rh := e.Fwd.Hash(t.seed), e.Rev.Hash(t.seed)
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.free) == 0 || s.fwd.find(s, fh, &e.Fwd, false) >= 0 || s.rev.find(s, rh, &e.Rev, true) >= 0 {
		return false
	}
	i := s.free[len(s.free)-1]
	s.free = s.free[:len(s.free)-1]
	s.entries[i] = *e
	s.fwd.insert(fh, i)
	s.rev.insert(rh, i)
	t.count.Add(1)
	return true
}

func putTuple(b []byte, t *packet.Tuple) {
	copy(b[0:16], t.Src[:])
	copy(b[16:32], t.Dst[:])
	binary.BigEndian.PutUint16(b[32:], t.SrcPort)
	binary.BigEndian.PutUint16(b[34:], t.DstPort)
	b[36] = byte(t.Proto)
}

func getTuple(b []byte) packet.Tuple {
	return packet.Tuple{Src: packet.Addr(b[0:16]), Dst: packet.Addr(b[16:32]), SrcPort: binary.BigEndian.Uint16(b[32:]),
		DstPort: binary.BigEndian.Uint16(b[34:]), Proto: ipproto.Proto(b[36])}
}

func putEntry(b []byte, e *Entry) {
	putTuple(b, &e.Fwd)
	putTuple(b[tupleSize:], &e.Rev)
	o := 2 * tupleSize
	binary.BigEndian.PutUint32(b[o:], e.Backend)
	binary.BigEndian.PutUint64(b[o+4:], uint64(e.LastSeen))
	binary.BigEndian.PutUint64(b[o+12:], e.Packets)
	binary.BigEndian.PutUint64(b[o+20:], e.Bytes)
	o += 28
	for _, d := range e.tcp {
		binary.BigEndian.PutUint32(b[o:], d.end)
		binary.BigEndian.PutUint16(b[o+4:], d.win)
		b[o+6] = d.wscale
		b[o+7] = boolByte(d.known)
		o += 8
	}
	copy(b[o:], e.ClientMAC[:])
	b[o+6] = byte(e.State)
	b[o+7] = boolByte(e.OneWay)
}

// getEntry decodes a record; false when a field is out of range.
func getEntry(b []byte, e *Entry) bool {
	e.Fwd, e.Rev = getTuple(b), getTuple(b[tupleSize:])
	o := 2 * tupleSize
	e.Backend = binary.BigEndian.Uint32(b[o:])
	e.LastSeen = int64(binary.BigEndian.Uint64(b[o+4:]))
	e.Packets = binary.BigEndian.Uint64(b[o+12:])
	e.Bytes = binary.BigEndian.Uint64(b[o+20:])
	o += 28
	for i := range e.tcp {
		e.tcp[i] = direction{end: binary.BigEndian.Uint32(b[o:]), win: binary.BigEndian.Uint16(b[o+4:]), wscale: b[o+6], known: b[o+7] == 1}
		o += 8
	}
	copy(e.ClientMAC[:], b[o:o+6])
	e.State = State(b[o+6])
	e.OneWay = b[o+7] == 1
	return e.State < numStates && e.Fwd.Proto.IsL4() && e.Rev.Proto == e.Fwd.Proto && e.Fwd.Src.Is4() == e.Rev.Src.Is4()
}

func boolByte(b bool) byte {
	if b {
		return 1
	}
	return 0
}
