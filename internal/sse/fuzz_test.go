package sse

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"unicode/utf8"
)

// reference interprets a whole event stream the plain way the standard
// describes it, as the oracle for FuzzReader.
func reference(stream string) (events []got, lastID string) {
	stream = strings.TrimPrefix(stream, "\xEF\xBB\xBF")
	var data, typ strings.Builder
	id := ""
	hasData := false
	for {
		i := strings.IndexAny(stream, "\r\n")
		if i < 0 {
			return events, id // an unterminated line, and its event, are dropped
		}
		line := stream[:i]
		if stream[i] == '\r' && i+1 < len(stream) && stream[i+1] == '\n' {
			i++
		}
		stream = stream[i+1:]
		switch {
		case line == "":
			d := data.String()
			if hasData && d != "\n" {
				t := typ.String()
				if t == "" {
					t = "message"
				}
				events = append(events, got{t, strings.TrimSuffix(d, "\n"), id})
			}
			data.Reset()
			typ.Reset()
			hasData = false
		case line[0] == ':':
		default:
			name, value, found := strings.Cut(line, ":")
			if found {
				value = strings.TrimPrefix(value, " ")
			}
			switch name {
			case "data":
				data.WriteString(value)
				data.WriteByte('\n')
				hasData = true
			case "event":
				typ.Reset()
				typ.WriteString(value)
			case "id":
				if !strings.Contains(value, "\x00") {
					id = value
				}
			}
		}
	}
}

func FuzzReader(f *testing.F) {
	for _, s := range []string{
		"data: a\n\n",
		"id: 1\ndata: \n\ndata: {}\r\n\r\n",
		"event: endpoint\rdata: /m?x=1\r\r",
		"\xEF\xBB\xBFdata: a\r\n\r\n: c\nid\nretry: 10\n\n",
		"data\ndata\n\n",
		"id: a\x00b\ndata: x\n\n",
	} {
		f.Add(s, uint8(0))
		f.Add(s, uint8(1))
	}
	f.Fuzz(func(t *testing.T, stream string, chunk uint8) {
		const max = 1 << 10
		want, wantID := reference(stream)
		events, r, err := readAll(t, stream, int(chunk), max)
		if errors.Is(err, ErrTooLarge) {
			if len(stream) <= max {
				t.Fatalf("ErrTooLarge for a %d-byte stream", len(stream))
			}
			return
		}
		if err != io.EOF {
			t.Fatalf("got error %v", err)
		}
		if fmt.Sprint(events) != fmt.Sprint(want) {
			t.Fatalf("stream %q (chunk %d):\n got %q\nwant %q", stream, chunk, events, want)
		}
		if r.LastEventID() != wantID {
			t.Fatalf("last id %q, want %q", r.LastEventID(), wantID)
		}
		// What the Writer writes reads back the same.
		for _, ev := range events {
			if !utf8.ValidString(ev.typ) || strings.ContainsAny(ev.typ+ev.id, "\r\n\x00") {
				continue
			}
			var b strings.Builder
			if err := NewWriter(&b).Event(ev.typ, ev.id, []byte(ev.data)); err != nil {
				t.Fatal(err)
			}
			back, _, _ := readAll(t, b.String(), 0, 0)
			// Line ends in data come back as LF.
			norm := strings.NewReplacer("\r\n", "\n", "\r", "\n").Replace(ev.data)
			if len(back) != 1 || back[0].data != norm || back[0].typ != ev.typ || back[0].id != ev.id {
				t.Fatalf("wrote %q, read back %q", ev, back)
			}
		}
	})
}
