//go:build unix

package h1

import (
	"errors"
	"net"
	"syscall"
)

// prober looks at an idle connection without reading from it. It is made
// once per connection, so that a look allocates nothing.
type prober struct {
	raw   syscall.RawConn
	fn    func(fd uintptr) bool
	alive bool
	b     [1]byte
}

func newProber(nc net.Conn) *prober {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return nil
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	p := &prober{raw: raw}
	p.fn = p.peek
	return p
}

// open reports whether an idle connection is still open: the server has
// neither closed it nor sent anything unasked. One non-blocking peek, so
// that a request is not written to a connection the server already
// closed (net/http's Transport learns the same from the read loop it
// keeps on every connection).
func (p *prober) open() bool {
	if p == nil {
		return true
	}
	p.alive = false
	return p.raw.Read(p.fn) == nil && p.alive
}

func (p *prober) peek(fd uintptr) bool {
	_, _, err := syscall.Recvfrom(int(fd), p.b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
	// Nothing to read is an open, quiet connection; 0 bytes is the
	// server's FIN, and a byte is something no request asked for.
	p.alive = errors.Is(err, syscall.EAGAIN) || errors.Is(err, syscall.EWOULDBLOCK)
	return true
}

func isReset(err error) bool { return errors.Is(err, syscall.ECONNRESET) }
