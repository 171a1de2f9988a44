//go:build unix

package h1

import (
	"errors"
	"net"
	"syscall"
)

// open reports whether an idle connection is still open: the server has
// neither closed it nor sent anything unasked. One non-blocking peek, so
// that a request is never written to a connection the server already
// closed as idle (net/http's Transport learns the same from the read
// loop it keeps on every connection).
func open(nc net.Conn) bool {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return true
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	alive := false
	var b [1]byte
	err = raw.Read(func(fd uintptr) bool {
		_, _, rerr := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		// Nothing to read is an open, quiet connection; 0 bytes is the
		// server's FIN, and a byte is something no request asked for.
		alive = errors.Is(rerr, syscall.EAGAIN) || errors.Is(rerr, syscall.EWOULDBLOCK)
		return true
	})
	return err == nil && alive
}

func isReset(err error) bool { return errors.Is(err, syscall.ECONNRESET) }
