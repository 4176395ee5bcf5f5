// Package api is the daemon's HTTP/JSON API on a root-only Unix socket, and
// its Go client, which the CLI uses.
package api
