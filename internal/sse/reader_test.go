package sse

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"testing/iotest"
	"time"
)

type got struct{ typ, data, id string }

// readAll reads every event of stream through a reader that returns at
// most chunk bytes a read (0: all at once).
func readAll(t testing.TB, stream string, chunk, max int) ([]got, *Reader, error) {
	t.Helper()
	var src io.Reader = strings.NewReader(stream)
	if chunk > 0 {
		src = &chunked{s: stream, n: chunk}
	}
	r := NewReader(src, max)
	var out []got
	for {
		ev, err := r.Next()
		if err != nil {
			return out, r, err
		}
		out = append(out, got{ev.Type, string(ev.Data), string(ev.ID)})
	}
}

// chunked returns at most n bytes a read.
type chunked struct {
	s string
	n int
}

func (c *chunked) Read(p []byte) (int, error) {
	if len(c.s) == 0 {
		return 0, io.EOF
	}
	n := copy(p[:min(len(p), c.n)], c.s)
	c.s = c.s[n:]
	return n, nil
}

func TestReader(t *testing.T) {
	t.Parallel()
	msg := func(data string) got { return got{"message", data, ""} }
	tests := []struct {
		name   string
		stream string
		want   []got
	}{
		{"LF", "data: a\n\ndata: b\n\n", []got{msg("a"), msg("b")}},
		{"CRLF", "data: a\r\n\r\ndata: b\r\n\r\n", []got{msg("a"), msg("b")}},
		{"CR", "data: a\r\rdata: b\r\r", []got{msg("a"), msg("b")}},
		{"mixed line ends", "data: a\r\ndata: b\rdata: c\n\r\n", []got{msg("a\nb\nc")}},
		{"CR then LF is one line end, CR CR is two", "data: a\r\r\ndata: b\n\n", []got{msg("a"), msg("b")}},
		{"multi-line data", "data: one\ndata:two\ndata:  three\n\n", []got{msg("one\ntwo\n three")}},
		{"field without colon", "data\ndata\n\n", []got{msg("\n")}},
		{"comments", ": hi\n:\ndata: x\n: mid\n\n", []got{msg("x")}},
		{"unknown fields ignored", "foo: bar\nDATA: no\ndata: yes\n\n", []got{msg("yes")}},
		{"event type", "event: endpoint\ndata: /messages?s=1\n\nevent: ping\ndata: x\n\ndata: y\n\n",
			[]got{{"endpoint", "/messages?s=1", ""}, {"ping", "x", ""}, msg("y")}},
		{"explicit message type", "event: message\ndata: x\n\n", []got{msg("x")}},
		{"type does not leak into the next event", "event: odd\n\ndata: y\n\n", []got{msg("y")}},
		{"no data: not dispatched", "id: 1\n\nevent: x\n\nretry: 10\n\n", nil},
		{"priming event with a blank data line: skipped, id kept", "id: 7\ndata: \n\ndata: {}\n\n", []got{{"message", "{}", "7"}}},
		{"priming with retry", "id: s1_0\nretry: 500\ndata: \n\ndata: {}\n\n", []got{{"message", "{}", "s1_0"}}},
		{"id persists", "id: 1\ndata: a\n\ndata: b\n\nid\ndata: c\n\n", []got{{"message", "a", "1"}, {"message", "b", "1"}, msg("c")}},
		{"id with NUL ignored", "id: 1\n\nid: a\x00b\ndata: x\n\n", []got{{"message", "x", "1"}}},
		{"unterminated event dropped", "data: a\n\ndata: b\n", []got{msg("a")}},
		{"unterminated line dropped", "data: a\n\ndata: b", []got{msg("a")}},
		{"BOM", "\xEF\xBB\xBFdata: a\n\n", []got{msg("a")}},
		{"second BOM is data", "\xEF\xBB\xBF\xEF\xBB\xBFdata: a\n\ndata: b\n\n", []got{msg("b")}},
		{"leading blank lines", "\n\n\r\ndata: a\n\n", []got{msg("a")}},
		{"colon in value", "data: {\"a\":1}\n\n", []got{msg(`{"a":1}`)}},
		{"long line", "data: " + strings.Repeat("x", 40000) + "\n\n", []got{msg(strings.Repeat("x", 40000))}},
		{"long line CRLF", "data: " + strings.Repeat("y", 40000) + "\r\n\r\ndata: z\r\n\r\n", []got{msg(strings.Repeat("y", 40000)), msg("z")}},
	}
	for _, tc := range tests {
		for _, chunk := range []int{0, 1, 2, 3, 7} {
			t.Run(fmt.Sprintf("%s/chunk=%d", tc.name, chunk), func(t *testing.T) {
				t.Parallel()
				events, _, err := readAll(t, tc.stream, chunk, 0)
				if !errors.Is(err, io.EOF) {
					t.Fatalf("got error %v, want io.EOF", err)
				}
				if fmt.Sprint(events) != fmt.Sprint(tc.want) {
					t.Errorf("got %q\nwant %q", events, tc.want)
				}
			})
		}
	}
}

// A CR that ends one read must end the line at once: the server may send
// nothing more until the client answers the event.
func TestReaderDoesNotWaitAfterCR(t *testing.T) {
	t.Parallel()
	pr, pw := io.Pipe()
	r := NewReader(pr, 0)
	go pw.Write([]byte("data: a\r\r"))
	done := make(chan Event, 1)
	go func() {
		ev, _ := r.Next()
		done <- ev
	}()
	select {
	case ev := <-done:
		if string(ev.Data) != "a" {
			t.Errorf("got %q, want a", ev.Data)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Next waited for the byte after a CR")
	}
	// The LF that follows in the next read belongs to the CR before it.
	go pw.Write([]byte("\ndata: b\r\n\r\n"))
	ev, err := r.Next()
	if err != nil || string(ev.Data) != "b" {
		t.Errorf("got %q, %v; want b", ev.Data, err)
	}
	pw.Close()
	if _, err := r.Next(); err != io.EOF {
		t.Errorf("got %v, want io.EOF", err)
	}
}

func TestReaderRetry(t *testing.T) {
	t.Parallel()
	tests := []struct {
		stream string
		want   time.Duration
	}{
		{"retry: 1500\n\n", 1500 * time.Millisecond},
		{"retry: 10\nretry: x\n\n", 10 * time.Millisecond},
		{"retry: 1.5\n\n", 0},
		{"retry:\n\n", 0},
		{"retry: -1\n\n", 0},
		{"retry: 99999999999999999999999\n\n", time.Duration(1<<63-1) / time.Millisecond * time.Millisecond},
	}
	for _, tc := range tests {
		_, r, _ := readAll(t, tc.stream, 0, 0)
		if r.Retry() != tc.want {
			t.Errorf("%q: got retry %v, want %v", tc.stream, r.Retry(), tc.want)
		}
	}
}

func TestReaderLastEventID(t *testing.T) {
	t.Parallel()
	_, r, _ := readAll(t, "id: 1\ndata: a\n\nid: 2\n\n", 0, 0)
	if got := r.LastEventID(); got != "2" {
		t.Errorf("got %q, want 2: an event without data still sets the id", got)
	}
}

func TestReaderTooLarge(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, stream string
	}{
		{"one data line", "data: " + strings.Repeat("x", 101) + "\n\n"},
		{"many data lines", strings.Repeat("data: xxxxxxxxxx\n", 11) + "\n"},
		{"a huge line of another field", "foo: " + strings.Repeat("x", 100000) + "\n\n"},
		{"a huge line without end", strings.Repeat("x", 100000)},
	}
	for _, tc := range tests {
		for _, chunk := range []int{0, 5} {
			events, _, err := readAll(t, "data: ok\n\n"+tc.stream, chunk, 100)
			if !errors.Is(err, ErrTooLarge) {
				t.Errorf("%s/chunk=%d: got %v, want ErrTooLarge", tc.name, chunk, err)
			}
			if len(events) != 1 {
				t.Errorf("%s: got %d events before the error, want 1", tc.name, len(events))
			}
		}
	}
	// At the limit is fine.
	events, _, err := readAll(t, "data: "+strings.Repeat("x", 100)+"\n\n", 3, 100)
	if err != io.EOF || len(events) != 1 {
		t.Errorf("event of exactly max bytes: got %d events, %v", len(events), err)
	}
}

func TestReaderPassesReadErrors(t *testing.T) {
	t.Parallel()
	boom := errors.New("boom")
	r := NewReader(io.MultiReader(strings.NewReader("data: a\n\ndata: b\n"), iotest.ErrReader(boom)), 0)
	if ev, err := r.Next(); err != nil || string(ev.Data) != "a" {
		t.Fatalf("got %q, %v; want a", ev.Data, err)
	}
	if _, err := r.Next(); !errors.Is(err, boom) {
		t.Errorf("got %v, want %v", err, boom)
	}
}

func TestReaderNoProgress(t *testing.T) {
	t.Parallel()
	r := NewReader(zeroReader{}, 0)
	if _, err := r.Next(); !errors.Is(err, io.ErrNoProgress) {
		t.Errorf("got %v, want io.ErrNoProgress", err)
	}
}

type zeroReader struct{}

func (zeroReader) Read([]byte) (int, error) { return 0, nil }

// The memory of one huge event is not kept for the rest of the stream.
func TestReaderReleasesHugeBuffers(t *testing.T) {
	t.Parallel()
	big := strings.Repeat("x", 3<<20)
	r := NewReader(strings.NewReader("data: "+big+"\n\ndata: a\n\n"), 0)
	if ev, err := r.Next(); err != nil || len(ev.Data) != len(big) {
		t.Fatalf("got %d bytes, %v", len(ev.Data), err)
	}
	if ev, err := r.Next(); err != nil || string(ev.Data) != "a" {
		t.Fatalf("got %q, %v", ev.Data, err)
	}
	if cap(r.data) > keepCap || cap(r.long) > keepCap {
		t.Errorf("buffers of %d and %d bytes kept after a huge event", cap(r.data), cap(r.long))
	}
}

func TestReaderAllocations(t *testing.T) {
	var stream bytes.Buffer
	for i := 0; i < 1000; i++ {
		fmt.Fprintf(&stream, "id: %d\nevent: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\",\"params\":{\"progress\":%d}}\n\n", i, i)
	}
	src := bytes.NewReader(stream.Bytes())
	r := NewReader(src, 0)
	allocs := testing.AllocsPerRun(1, func() {
		src.Reset(stream.Bytes())
		for {
			if _, err := r.Next(); err != nil {
				break
			}
		}
	})
	// Warm buffers: reading 1000 events allocates nothing.
	if allocs > 0 {
		t.Errorf("got %v allocations for 1000 events, want 0", allocs)
	}
}

func BenchmarkReader(b *testing.B) {
	var stream bytes.Buffer
	const events = 100
	for i := 0; i < events; i++ {
		fmt.Fprintf(&stream, "id: %d\ndata: {\"jsonrpc\":\"2.0\",\"id\":%d,\"result\":{\"content\":[{\"type\":\"text\",\"text\":\"%s\"}]}}\n\n", i, i, strings.Repeat("x", 200))
	}
	src := bytes.NewReader(stream.Bytes())
	b.SetBytes(int64(stream.Len()))
	b.ReportAllocs()
	for b.Loop() {
		src.Reset(stream.Bytes())
		r := NewReader(src, 0)
		n := 0
		for {
			if _, err := r.Next(); err != nil {
				break
			}
			n++
		}
		if n != events {
			b.Fatalf("got %d events", n)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*events), "ns/event")
}
