//go:build !unix

package h1

import "net"

// open cannot look at an idle connection here without blocking; a
// connection the server closed is found when the request is sent, and
// the request sent again when it can be (Transport.RoundTrip).
func open(net.Conn) bool { return true }

func isReset(error) bool { return false }
