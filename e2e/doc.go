// Package e2e runs the scmlb-xsk binary in network-namespace labs and sends
// real TCP and UDP traffic through it.
package e2e
