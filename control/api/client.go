package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"
)

// Client talks to the daemon over its Unix socket.
type Client struct {
	path string
	http *http.Client
}

// NewClient makes a client for the socket at path.
func NewClient(path string) *Client {
	return &Client{path: path, http: &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		}},
	}}
}

// Services lists services with their backends and counters.
func (c *Client) Services() ([]Service, error) {
	var out []Service
	return out, c.do(http.MethodGet, "/v1/services", nil, &out)
}

// AddService creates a service (VIP is IP:PORT or [IPv6]:PORT; Mode and Health may be empty).
func (c *Client) AddService(r AddServiceRequest) (Service, error) {
	var out Service
	return out, c.do(http.MethodPost, "/v1/services", r, &out)
}

// SetServiceHealth sets or (nil) removes a service's health check.
func (c *Client) SetServiceHealth(id uint32, h *HealthCheck) error {
	return c.do(http.MethodPut, fmt.Sprintf("/v1/services/%d/health", id), SetHealthRequest{Health: h}, nil)
}

// DeleteService removes a service; without force, its backends must be drained.
func (c *Client) DeleteService(id uint32, force bool) error {
	q := ""
	if force {
		q = "?force=true"
	}
	return c.do(http.MethodDelete, fmt.Sprintf("/v1/services/%d%s", id, q), nil, nil)
}

// Backends lists the backends of all services.
func (c *Client) Backends() ([]Backend, error) {
	var out []Backend
	return out, c.do(http.MethodGet, "/v1/backends", nil, &out)
}

// AddBackend adds a backend (IP[:PORT], [IPv6]:PORT) to a service.
func (c *Client) AddBackend(serviceID uint32, address string, weight uint32) (Backend, error) {
	var out Backend
	return out, c.do(http.MethodPost, "/v1/backends", AddBackendRequest{ServiceID: serviceID, Address: address, Weight: weight}, &out)
}

// DrainBackend stops new flows to a backend.
func (c *Client) DrainBackend(id uint32) error {
	return c.do(http.MethodPost, fmt.Sprintf("/v1/backends/%d/drain", id), nil, nil)
}

// DeleteBackend removes a drained backend.
func (c *Client) DeleteBackend(id uint32) error {
	return c.do(http.MethodDelete, fmt.Sprintf("/v1/backends/%d", id), nil, nil)
}

// Conntrack lists tracked flows.
func (c *Client) Conntrack() ([]Flow, error) {
	var out []Flow
	return out, c.do(http.MethodGet, "/v1/conntrack", nil, &out)
}

// Stats returns all counters.
func (c *Client) Stats() (Stats, error) {
	var out Stats
	return out, c.do(http.MethodGet, "/v1/stats", nil, &out)
}

// Apply sends a declarative document; see ApplyRequest.
func (c *Client) Apply(yaml string, dryRun bool) (ApplyResult, error) {
	var out ApplyResult
	return out, c.do(http.MethodPost, "/v1/apply", ApplyRequest{YAML: yaml, DryRun: dryRun}, &out)
}

// Trace explains what the load balancer does with a flow.
func (c *Client) Trace(req TraceRequest) (Trace, error) {
	var out Trace
	return out, c.do(http.MethodPost, "/v1/trace", req, &out)
}

// Export returns the current state as a declarative document.
func (c *Client) Export() (string, error) {
	var out Export
	err := c.do(http.MethodGet, "/v1/export", nil, &out)
	return out.YAML, err
}

func (c *Client) do(method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, "http://scmlb-xsk"+path, body)
	if err != nil {
		return err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		var op *net.OpError
		if errors.As(err, &op) {
			return fmt.Errorf("daemon not reachable at %s (is `scmlb-xsk run` running, and are you root?): %w", c.path, err)
		}
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		return statusError(resp, method, path)
	}
	if out == nil {
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("%s %s: decode answer: %w", method, path, err)
	}
	return nil
}

// StatusError is the daemon's answer to a request it refused: the HTTP
// status (400, 404, 409, 500) and its message.
type StatusError struct {
	Code    int
	Message string
}

func (e *StatusError) Error() string { return e.Message }

func statusError(resp *http.Response, method, path string) error {
	var e Error
	if json.NewDecoder(resp.Body).Decode(&e) == nil && e.Error != "" {
		return &StatusError{Code: resp.StatusCode, Message: e.Error}
	}
	return &StatusError{Code: resp.StatusCode, Message: fmt.Sprintf("%s %s: %s", method, path, resp.Status)}
}

// FirewallRules lists rules with their drop counters.
func (c *Client) FirewallRules() ([]FirewallRule, error) {
	var out []FirewallRule
	return out, c.do(http.MethodGet, "/v1/firewall", nil, &out)
}

// AddFirewallRule adds a deny rule.
func (c *Client) AddFirewallRule(r AddFirewallRuleRequest) (FirewallRule, error) {
	var out FirewallRule
	return out, c.do(http.MethodPost, "/v1/firewall", r, &out)
}

// DeleteFirewallRule removes a rule.
func (c *Client) DeleteFirewallRule(id uint32) error {
	return c.do(http.MethodDelete, fmt.Sprintf("/v1/firewall/%d", id), nil, nil)
}

// DosPolicies lists policies with the sources they block.
func (c *Client) DosPolicies() ([]DosPolicy, error) {
	var out []DosPolicy
	return out, c.do(http.MethodGet, "/v1/dos", nil, &out)
}

// AddDosPolicy adds a policy.
func (c *Client) AddDosPolicy(r AddDosPolicyRequest) (DosPolicy, error) {
	var out DosPolicy
	return out, c.do(http.MethodPost, "/v1/dos", r, &out)
}

// DeleteDosPolicy removes a policy and releases the sources it blocked.
func (c *Client) DeleteDosPolicy(id uint32) error {
	return c.do(http.MethodDelete, fmt.Sprintf("/v1/dos/%d", id), nil, nil)
}

// Dump streams a pcapng capture into w until the daemon ends it.
func (c *Client) Dump(req DumpRequest, w io.Writer) error {
	// A dump may run for up to an hour; only the connection has a timeout.
	hc := *c.http
	hc.Timeout = 0
	resp, err := hc.Get("http://scmlb-xsk/v1/dump?" + req.values().Encode())
	if err != nil {
		return fmt.Errorf("daemon not reachable at %s: %w", c.path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		return statusError(resp, "GET", "/v1/dump")
	}
	_, err = io.Copy(w, resp.Body)
	return err
}
