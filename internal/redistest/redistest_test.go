package redistest

import "testing"

func TestStopRestart(t *testing.T) {
	s := Start(t)
	if !ping(s.Addr()) {
		t.Fatal("no PONG from a started server")
	}
	s.Stop()
	if ping(s.Addr()) {
		t.Fatal("PONG from a stopped server")
	}
	s.Restart()
	if !ping(s.Addr()) {
		t.Fatal("no PONG after Restart")
	}
}
