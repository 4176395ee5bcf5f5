package config

import (
	"fmt"
	"time"

	"github.com/scmlb-xsk/scmlb-xsk/control/health"
)

// HealthCheck is a service's backend probe. Port 0 probes each backend's
// own port.
type HealthCheck struct {
	Type       string `json:"type"` // tcp, http or udp
	Port       uint16 `json:"port,omitempty"`
	Path       string `json:"path,omitempty"`
	Status     int    `json:"status,omitempty"`
	Payload    string `json:"payload,omitempty"`
	IntervalMs uint32 `json:"interval_ms"`
	TimeoutMs  uint32 `json:"timeout_ms"`
	Rise       int    `json:"rise"`
	Fall       int    `json:"fall"`
}

// Check converts to the prober's form.
func (h HealthCheck) Check() health.Check {
	return health.Check{Type: h.Type, Port: h.Port, Path: h.Path, Status: h.Status, Payload: h.Payload,
		Interval: time.Duration(h.IntervalMs) * time.Millisecond, Timeout: time.Duration(h.TimeoutMs) * time.Millisecond,
		Rise: h.Rise, Fall: h.Fall}
}

func (h *HealthCheck) validate() error {
	if h == nil {
		return nil
	}
	if err := h.Check().Validate(); err != nil {
		return fmt.Errorf("%w: health check: %v", ErrInvalid, err)
	}
	return nil
}
