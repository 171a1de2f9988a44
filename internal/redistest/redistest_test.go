package redistest

import (
	"net"
	"testing"
	"time"
)

// pong reports whether a PING at addr gets +PONG.
func pong(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return false
	}
	buf := make([]byte, 7)
	n, _ := c.Read(buf)
	return string(buf[:n]) == "+PONG\r\n"
}

func TestStopRestart(t *testing.T) {
	s := Start(t)
	if !pong(s.Addr()) {
		t.Fatal("no PONG from a started server")
	}
	s.Stop()
	if pong(s.Addr()) {
		t.Fatal("PONG from a stopped server")
	}
	s.Restart()
	if !pong(s.Addr()) {
		t.Fatal("no PONG after Restart")
	}
}
