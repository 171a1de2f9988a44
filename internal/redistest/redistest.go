// Package redistest runs a real redis-server for tests: on a free loopback
// port, with no persistence, stopped when the test ends. Stop and Restart
// let a test take Redis away and bring it back on the same port.
package redistest

import (
	"errors"
	"os"
	"testing"

	"github.com/tracegate/tracegate/internal/redisserver"
)

// Server is a redis-server child process.
type Server struct {
	t   testing.TB
	srv *redisserver.Server
}

// Start runs redis-server from PATH. Without it the test is skipped, or
// fails when TRACEGATE_REQUIRE_REDIS=1 (as in CI, where .ci/run installs
// it).
func Start(t testing.TB) *Server {
	t.Helper()
	srv, err := redisserver.Start(t.TempDir())
	if errors.Is(err, redisserver.ErrNotInstalled) {
		if os.Getenv("TRACEGATE_REQUIRE_REDIS") == "1" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	return &Server{t: t, srv: srv}
}

// Addr is the server's host:port.
func (s *Server) Addr() string { return s.srv.Addr() }

// URL is the server's redis:// URL (database 0).
func (s *Server) URL() string { return s.srv.URL() }

// Stop kills the server (SIGKILL: what a crash looks like to clients) and
// waits for it to exit. It does nothing if the server is stopped.
func (s *Server) Stop() { s.srv.Stop() }

// Restart starts a stopped server again on the same port, empty.
func (s *Server) Restart() {
	s.t.Helper()
	if err := s.srv.Restart(); err != nil {
		s.t.Fatal(err)
	}
}
