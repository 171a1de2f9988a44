package conn

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"slices"
	"sync"
	"syscall"
	"time"
)

// stdio is a session with a child process: newline-delimited JSON-RPC on
// its stdin and stdout (MCP basic/transports, "stdio").
type stdio struct {
	*session
	cmd    *exec.Cmd
	name   string // the command, for errors
	stdin  *os.File
	stdout *os.File
	stderr *os.File
	lines  stderrLines
	writes chan stdioWrite

	readDone chan struct{} // stdout reached its end
	errDone  chan struct{} // stderr reached its end
	exited   chan struct{} // the child was reaped
	wg       sync.WaitGroup

	closeOnce sync.Once
}

type stdioWrite struct {
	b    []byte
	errc chan error
}

// errStdoutClosed ends a session whose child closed its stdout but lives on.
var errStdoutClosed = errors.New("the server process closed its stdout")

// stdoutGrace is how long a child may live on after closing its stdout,
// and how long the reaper waits for stdout to drain after the child exits.
const stdoutGrace = time.Second

func dialStdio(ctx context.Context, ep Endpoint, opts Options) (Conn, error) {
	if len(ep.Command) == 0 || ep.Command[0] == "" {
		return nil, errors.New("stdio: no command")
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	// Not CommandContext: the child lives as long as the session, not
	// as long as Dial's context.
	cmd := exec.Command(ep.Command[0], ep.Command[1:]...)
	cmd.Dir = opts.Dir
	cmd.Env = os.Environ()
	for _, k := range slices.Sorted(maps.Keys(opts.Env)) {
		cmd.Env = append(cmd.Env, k+"="+opts.Env[k])
	}
	configureChild(cmd)

	// The parent's ends of the three pipes are its own files, not the
	// copying goroutines exec would add for other writers: Wait then
	// never blocks on a descendant that keeps a pipe open.
	var files []*os.File
	closeAll := func() {
		for _, f := range files {
			f.Close()
		}
	}
	pipe := func() (r, w *os.File, err error) {
		r, w, err = os.Pipe()
		if err == nil {
			files = append(files, r, w)
		}
		return r, w, err
	}
	inR, inW, err := pipe()
	if err != nil {
		return nil, fmt.Errorf("stdio: %w", err)
	}
	outR, outW, err := pipe()
	if err != nil {
		closeAll()
		return nil, fmt.Errorf("stdio: %w", err)
	}
	errR, errW, err := pipe()
	if err != nil {
		closeAll()
		return nil, fmt.Errorf("stdio: %w", err)
	}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = inR, outW, errW
	if err := cmd.Start(); err != nil {
		closeAll()
		return nil, fmt.Errorf("starting the server process %q: %w", ep.Command[0], err)
	}
	inR.Close()
	outW.Close()
	errW.Close()

	s := &stdio{
		session:  newSession(opts),
		cmd:      cmd,
		name:     ep.Command[0],
		stdin:    inW,
		stdout:   outR,
		stderr:   errR,
		lines:    stderrLines{w: opts.Stderr, log: opts.Logger},
		writes:   make(chan stdioWrite),
		readDone: make(chan struct{}),
		errDone:  make(chan struct{}),
		exited:   make(chan struct{}),
	}
	s.wg.Add(4)
	go s.readLoop()
	go s.writeLoop()
	go s.stderrLoop()
	go s.reap()
	return s, nil
}

// readLoop reads one message a line from the child's stdout.
func (s *stdio) readLoop() {
	defer s.wg.Done()
	defer s.stdout.Close()
	max := s.opts.MaxMessage
	br := bufio.NewReaderSize(s.stdout, 64<<10)
	var long []byte
	for {
		line, err := br.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			long = append(long[:0], line...)
			for err == bufio.ErrBufferFull && len(long) <= max+2 {
				line, err = br.ReadSlice('\n')
				long = append(long, line...)
			}
			line = long
		}
		if len(bytes.TrimRight(line, "\r\n")) > max {
			s.fail(fmt.Errorf("%w: a line of more than %d bytes on stdout", ErrTooLarge, max))
			close(s.readDone)
			return
		}
		if err != nil {
			// EOF, or Close closed the pipe. A line cut off by the end
			// is dropped.
			close(s.readDone)
			break
		}
		if line = bytes.TrimSpace(line); len(line) > 0 {
			s.dispatch(line)
		}
		if cap(long) > 1<<20 {
			long = nil
		}
	}
	// A child that closes stdout and lives on can answer nothing more.
	select {
	case <-s.exited:
	case <-s.done:
	case <-time.After(stdoutGrace):
		s.fail(errStdoutClosed)
	}
}

// writeLoop writes messages to the child's stdin one at a time, so that
// concurrent writers never interleave their bytes.
func (s *stdio) writeLoop() {
	defer s.wg.Done()
	for {
		select {
		case w := <-s.writes:
			_, err := s.stdin.Write(w.b)
			w.errc <- err
			if err != nil {
				s.fail(fmt.Errorf("writing to the server process's stdin: %w", err))
				return
			}
		case <-s.done:
			return
		}
	}
}

func (s *stdio) stderrLoop() {
	defer s.wg.Done()
	defer close(s.errDone)
	defer s.stderr.Close()
	s.lines.run(s.stderr)
}

// reap waits for the child, ends its process group, and ends the session
// with the exit status.
func (s *stdio) reap() {
	defer s.wg.Done()
	err := s.cmd.Wait()
	// Descendants go with the child; their open pipes would hold stdout.
	signalGroup(s.cmd, syscall.SIGKILL)
	// What the child wrote before it exited is still read.
	select {
	case <-s.readDone:
	case <-time.After(stdoutGrace):
	}
	s.fail(s.exitError(err))
	close(s.exited)
	s.stdin.Close()
}

// exitError says how the child ended; it wraps *exec.ExitError, which
// carries the exit status.
func (s *stdio) exitError(err error) error {
	select {
	case <-s.errDone:
	case <-time.After(100 * time.Millisecond): // the last stderr line, if it comes soon
	}
	msg := fmt.Sprintf("the server process %s exited", s.name)
	if err == nil {
		err = errors.New("exit status 0")
	}
	if last := s.lines.Last(); last != "" {
		return fmt.Errorf("%s: %w; its last stderr line: %q", msg, err, last)
	}
	return fmt.Errorf("%s: %w", msg, err)
}

// frame makes msg one line: a message with a raw newline (pretty-printed
// JSON) is compacted, since a newline ends a message on stdio.
func frame(msg []byte) ([]byte, error) {
	msg = bytes.TrimSpace(msg)
	b := make([]byte, 0, len(msg)+1)
	if bytes.ContainsAny(msg, "\r\n") {
		var buf bytes.Buffer
		if err := json.Compact(&buf, msg); err != nil {
			return nil, fmt.Errorf("stdio: message is not JSON: %w", err)
		}
		msg = buf.Bytes()
	}
	return append(append(b, msg...), '\n'), nil
}

// write hands b to writeLoop; wait says whether to wait until it is
// written.
func (s *stdio) write(ctx context.Context, msg []byte, wait bool) error {
	b, err := frame(msg)
	if err != nil {
		return err
	}
	w := stdioWrite{b: b, errc: make(chan error, 1)}
	select {
	case s.writes <- w:
	case <-ctx.Done():
		return ctx.Err()
	case <-s.done:
		return s.Err()
	}
	if !wait {
		return nil
	}
	select {
	case err := <-w.errc:
		if err != nil {
			return fmt.Errorf("writing to the server process's stdin: %w", err)
		}
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-s.done:
		return s.Err()
	}
}

func (s *stdio) Request(ctx context.Context, id, msg []byte, _ func([]byte)) ([]byte, error) {
	key, ch, err := s.expect(id)
	if err != nil {
		return nil, err
	}
	if err := s.write(ctx, msg, false); err != nil {
		s.forget(key)
		return nil, err
	}
	return s.await(ctx, key, ch)
}

func (s *stdio) Send(ctx context.Context, msg []byte) error { return s.write(ctx, msg, true) }

func (s *stdio) Established(string) {}

func (s *stdio) SessionID() string { return "" }

// Close follows MCP's stdio shutdown: close the child's stdin, wait for
// it to exit, then SIGTERM, then SIGKILL, each after KillGrace; signals
// go to the whole process group. It returns once the child is reaped and
// every goroutine of the session has ended.
func (s *stdio) Close() error {
	s.closeOnce.Do(func() {
		s.fail(ErrClosed)
		s.stdin.Close()
		grace := s.opts.KillGrace
		t := time.NewTimer(grace)
		select {
		case <-s.exited:
		case <-t.C:
			signalGroup(s.cmd, syscall.SIGTERM)
			t.Reset(grace)
			select {
			case <-s.exited:
			case <-t.C:
				signalGroup(s.cmd, syscall.SIGKILL)
				<-s.exited
			}
		}
		t.Stop()
		// A descendant that left the group may still hold stdout or
		// stderr open; closing our ends frees the readers.
		s.stdout.Close()
		s.stderr.Close()
		s.wg.Wait()
	})
	return nil
}
