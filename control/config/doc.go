// Package config holds the desired state of the load balancer (services and
// their backends), parses it from the command line and validates it.
package config
