// Package bgp announces the load balancer's VIPs to routers with an embedded
// GoBGP speaker: a /32 per VIP, next hop the session's own address, so the
// routers spread VIP traffic over the instances with ECMP.
package bgp
