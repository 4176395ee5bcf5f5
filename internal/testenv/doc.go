// Package testenv builds network-namespace labs (client, load balancer,
// backends joined by veth pairs and a bridge) for privileged tests and the
// demo, and removes every namespace, link and process it made when the test
// ends, pass or fail.
package testenv
