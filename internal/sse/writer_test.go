package sse

import (
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestWriter(t *testing.T) {
	t.Parallel()
	rec := httptest.NewRecorder()
	w := NewWriter(rec)
	if err := w.Event("", "7", []byte(`{"a":1}`)); err != nil {
		t.Fatal(err)
	}
	if !rec.Flushed {
		t.Error("the event was not flushed")
	}
	if err := w.Event("endpoint", "", []byte("one\ntwo\r\nthree\rfour")); err != nil {
		t.Fatal(err)
	}
	if err := w.Retry(1500 * time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if err := w.Comment("keep-alive"); err != nil {
		t.Fatal(err)
	}
	if err := w.Event("", "", nil); err != nil {
		t.Fatal(err)
	}
	want := "id: 7\ndata: {\"a\":1}\n\n" +
		"event: endpoint\ndata: one\ndata: two\ndata: three\ndata: four\n\n" +
		"retry: 1500\n\n" +
		": keep-alive\n\n" +
		"data: \n\n"
	if got := rec.Body.String(); got != want {
		t.Errorf("got %q\nwant %q", got, want)
	}
	// And the Reader reads it back.
	events, r, _ := readAll(t, rec.Body.String(), 0, 0)
	if len(events) != 2 || events[0] != (got{"message", `{"a":1}`, "7"}) || events[1] != (got{"endpoint", "one\ntwo\nthree\nfour", "7"}) {
		t.Errorf("read back %q", events)
	}
	if r.Retry() != 1500*time.Millisecond {
		t.Errorf("read back retry %v", r.Retry())
	}
}

func TestWriterRefusesBrokenFraming(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	w := NewWriter(&b)
	for _, tc := range []struct{ typ, id string }{{"a\nb", ""}, {"", "1\r"}, {"", "x\x00"}} {
		if err := w.Event(tc.typ, tc.id, []byte("x")); !errors.Is(err, ErrBadID) {
			t.Errorf("type %q id %q: got %v, want ErrBadID", tc.typ, tc.id, err)
		}
	}
	if b.Len() != 0 {
		t.Errorf("wrote %q after refusing", b.String())
	}
}
