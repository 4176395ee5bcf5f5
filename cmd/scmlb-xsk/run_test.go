package main

import (
	"bytes"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestRunRejectsBadInput runs the real binary: bad flags must fail before
// touching any interface, with a message naming the problem.
func TestRunRejectsBadInput(t *testing.T) {
	bin := t.TempDir() + "/scmlb-xsk"
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v %s", err, out)
	}
	bgpRun := []string{"run", "--upstream", "lo", "--bgp-asn", "65001", "--bgp-router-id", "10.0.5.11", "--bgp-peer", "10.0.5.1"}
	dir := t.TempDir()
	good, typo := dir+"/lb.yaml", dir+"/typo.yaml"
	os.WriteFile(good, []byte("services: []\n"), 0o644)
	os.WriteFile(typo, []byte("services:\n  - vip: 10.0.100.1:80\n    backend: []\n"), 0o644)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"run"}, `Required flag "upstream" not set`},
		{[]string{"run", "--upstream", "lo", "--vip", "10.0.0.1:80/tcp"}, "--vip needs at least one --backend"},
		{[]string{"run", "--upstream", "lo", "--vip", "10.0.0.1/tcp", "--backend", "10.0.2.1"}, "want IP:PORT/PROTO"},
		{[]string{"run", "--upstream", "lo", "--vip", "10.0.0.1:80/sctp", "--backend", "10.0.2.1"}, "want tcp or udp"},
		{[]string{"run", "--upstream", "lo", "--vip", "10.0.0.1:80", "--backend", "10.0.2.1@x"}, "weight must be a positive integer"},
		{[]string{"run", "--upstream", "lo", "--service", "tcp/10.0.0.1:80=10.0.2.1,10.0.2.1"}, "given twice"},
		{[]string{"run", "--upstream", "lo", "--service", "tcp/10.0.0.1:80=10.0.2.1", "--xdp-mode", "hw"}, "want native or generic"},
		{[]string{"run", "--upstream", "lo", "--service", "tcp/10.0.0.1:80=10.0.2.1", "--cpus", "a"}, "comma list"},
		{[]string{"run", "--upstream", "no-such-if0", "--service", "tcp/10.0.0.1:80=10.0.2.1"}, `interface "no-such-if0"`},
		{[]string{"run", "--upstream", "lo", "--bgp-asn", "65001"}, "needs --bgp-asn, --bgp-router-id and at least one --bgp-peer"},
		{append(bgpRun, "--bgp-hold", "1500ms"), "--bgp-hold 1.5s: want whole seconds"},
		{append(bgpRun, "--bgp-hold", "2s"), "3s to 65535s"},
		{append(bgpRun, "--bgp-asn", "0"), "local ASN 0"},
		{append(bgpRun, "--bgp-asn", "4294967296"), "want 1 to 4294967295"},
		{append(bgpRun, "--bgp-peer", "10.0.5.1"), "10.0.5.1 given twice"},
		{append(bgpRun, "--bgp-peer", "10.0.5.2:AS1"), `ASN "AS1" is not a number`},
		{append(bgpRun, "--bgp-peer", "2001:db8::1"), "want IPv4[:ASN]"},
		{append(bgpRun, "--bgp-router-id", "bgp1"), `router id "bgp1"`},
		{append(bgpRun, "--bgp-drain", "-1s"), "--bgp-drain -1s"},
		{append(bgpRun, "--bgp-drain", "1h"), "--bgp-drain 1h0m0s"},
		{[]string{"run", "--upstream", "lo", "--config", good, "--vip", "10.0.0.1:80", "--backend", "10.0.2.1"}, "give the services there"},
		{[]string{"run", "--upstream", "lo", "--config", dir + "/missing.yaml"}, "no such file"},
		{[]string{"run", "--upstream", "lo", "--config", typo}, "field backend not found"},
	} {
		var stderr bytes.Buffer
		// A run that got far would write state: never to the default path.
		state := t.TempDir() + "/state.json"
		args := append(c.args, "--state-file", state)
		cmd := exec.Command(bin, args...)
		cmd.Stderr = &stderr
		cmd.Env = append(os.Environ(), "NO_COLOR=1")
		err := cmd.Run()
		if err == nil {
			t.Errorf("%v: succeeded", c.args)
			continue
		}
		if !strings.Contains(stderr.String(), c.want) {
			t.Errorf("%v: stderr %q, want %q", c.args, stderr.String(), c.want)
		}
		// A start that failed must not have written the desired state.
		if _, err := os.Stat(state); err == nil {
			t.Errorf("%v: failed start wrote %s", c.args, state)
		}
	}
}
