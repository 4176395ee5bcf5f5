// Package declare is the declarative form of the desired state: one YAML
// document with the services (mode, health check, backends with weights
// and drain), firewall rules and DoS policies. Objects are named by their
// natural keys (VIP:port/proto, backend address:port, a rule's match, a
// policy's protocol and type), never by id: Desired maps a document onto
// the current state, keeping the ids of what it keeps. Pure functions, no
// I/O.
package declare

import (
	"bytes"
	"errors"
	"fmt"
	"io"

	"go.yaml.in/yaml/v3"
)

// Doc is the whole document. An absent list means none: applying a
// document with no firewall section removes every rule.
type Doc struct {
	Services []Service `yaml:"services"`
	Firewall []Rule    `yaml:"firewall,omitempty"`
	DoS      []Policy  `yaml:"dos,omitempty"`
}

// Service is a VIP:port/proto and its backends.
type Service struct {
	VIP      string    `yaml:"vip"`             // "10.0.100.1:80", "[2001:db8::10]:443"
	Proto    string    `yaml:"proto,omitempty"` // tcp (default) or udp
	Mode     string    `yaml:"mode,omitempty"`  // nat (default), fullnat, dsr-l2, dsr-ipip
	Health   *Health   `yaml:"health,omitempty"`
	Backends []Backend `yaml:"backends"`
}

// Health is a backend health check; omitted fields take the CLI's defaults.
type Health struct {
	Type     string `yaml:"type"`              // tcp, http or udp
	Port     uint16 `yaml:"port,omitempty"`    // 0: each backend's port
	Path     string `yaml:"path,omitempty"`    // http, default /
	Status   int    `yaml:"status,omitempty"`  // http, default 200
	Payload  string `yaml:"payload,omitempty"` // udp, default ping
	Interval string `yaml:"interval,omitempty"`
	Timeout  string `yaml:"timeout,omitempty"`
	Rise     int    `yaml:"rise,omitempty"`
	Fall     int    `yaml:"fall,omitempty"`
}

// Backend is IP[:PORT] ([IPv6]:PORT); the port defaults to the service's.
type Backend struct {
	Address string `yaml:"address"`
	Weight  uint32 `yaml:"weight,omitempty"` // default 1
	Drained bool   `yaml:"drained,omitempty"`
}

// Rule is a firewall deny rule.
type Rule struct {
	Network  string `yaml:"network"`
	Proto    string `yaml:"proto,omitempty"`     // any (default), tcp, udp, icmp, icmpv6
	SrcPorts string `yaml:"src_ports,omitempty"` // any (default), 53, 1000-2000
	DstPorts string `yaml:"dst_ports,omitempty"`
}

// Policy is a DoS rate limit per source.
type Policy struct {
	Proto    string `yaml:"proto"`
	Type     string `yaml:"type,omitempty"` // tcp: syn, ack, fin, rst or any (default)
	LimitPPS uint32 `yaml:"limit_pps"`
	Block    string `yaml:"block"` // a duration: 30s, 5m
}

// MaxSize bounds a document: the largest state the limits allow is well
// under it.
const MaxSize = 16 << 20

// Parse reads one YAML document strictly: an unknown key (a typo such as
// "backend:" or "wieght:") is an error, not silently ignored.
func Parse(r io.Reader) (Doc, error) {
	b, err := io.ReadAll(io.LimitReader(r, MaxSize+1))
	if err != nil {
		return Doc{}, err
	}
	if len(b) > MaxSize {
		return Doc{}, fmt.Errorf("document larger than %d bytes", MaxSize)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	var d Doc
	if err := dec.Decode(&d); err != nil {
		if errors.Is(err, io.EOF) {
			return Doc{}, errors.New("empty document: write `services: []` for no services")
		}
		return Doc{}, fmt.Errorf("yaml: %w", err)
	}
	var extra any
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return Doc{}, errors.New("more than one YAML document")
	}
	return d, nil
}

// Marshal writes d as YAML.
func Marshal(d Doc) ([]byte, error) {
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(d); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
