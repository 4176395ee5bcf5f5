// Package metrics exposes the daemon's counters to Prometheus. Each scrape
// takes one snapshot from the same source as the API, so /metrics and
// `scmlb-xsk stat` always agree.
package metrics
