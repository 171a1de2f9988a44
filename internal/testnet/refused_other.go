//go:build !linux

package testnet

import (
	"net"
	"testing"
)

// RefusedAddr returns a loopback host:port that was free a moment ago,
// where connections are refused unless another test takes the port.
func RefusedAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}
