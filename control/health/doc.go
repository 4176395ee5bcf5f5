// Package health probes backends (TCP connect, HTTP GET, UDP
// request/response) on an interval and reports when one turns healthy or
// unhealthy after rise/fall consecutive results.
package health
