//go:build !unix

package h1

import "net"

// prober cannot look at an idle connection here without blocking: a
// connection the server closed is found when a request is sent on it,
// which is then sent again only when that is safe (Transport.RoundTrip).
type prober struct{}

func newProber(net.Conn) *prober { return nil }

func (*prober) open() bool { return true }

func isReset(error) bool { return false }
