package wire

import (
	"encoding/json"
	"reflect"
	"testing"
)

func TestParse(t *testing.T) {
	m, err := Parse([]byte(`{"jsonrpc":"2.0","id":"abc","method":"tools/call","params":{"name":"x"}}`))
	if err != nil || string(m.ID) != `"abc"` || m.Method != "tools/call" || string(m.Params) != `{"name":"x"}` || !m.IsRequest() {
		t.Errorf("request: %+v %v", m, err)
	}
	m, err = Parse([]byte(`{"id":7,"jsonrpc":"2.0","result":{"isError":true}}`))
	if err != nil || !m.IsResponse() || string(m.Result) != `{"isError":true}` {
		t.Errorf("response: %+v %v", m, err)
	}
	m, err = Parse([]byte(`{"jsonrpc":"2.0","method":"notifications/initialized"}`))
	if err != nil || !m.IsNotification() {
		t.Errorf("notification: %+v %v", m, err)
	}
	for _, tt := range []struct {
		in   string
		want error
	}{
		{`[{"jsonrpc":"2.0","id":1,"method":"ping"}]`, ErrBatch},
		{`"ping"`, ErrNotObject},
		{`{"jsonrpc":"1.0","id":1,"method":"ping"}`, ErrVersion},
		{`{"id":1,"method":"ping"}`, ErrVersion},
		{`{"jsonrpc":"2.0","id":null,"method":"ping"}`, ErrID},
		{`{"jsonrpc":"2.0","id":{"a":1},"method":"ping"}`, ErrID},
		{`{"jsonrpc":"2.0","id":1,"method":3}`, ErrMethod},
		{`{"jsonrpc":"2.0","id":1,"method":""}`, ErrMethod},
		{`{"jsonrpc":"2.0","id":1,"method":"ping"} trailing`, ErrSyntax},
		{`{"jsonrpc":"2.0","id":1,"id":2,"method":"ping"}`, ErrRepeated},
		{`{"jsonrpc":"2.0","\u0069d":1,"id":2,"method":"ping"}`, ErrRepeated},
		{`{"jsonrpc":"2.0","id":1}`, ErrShape},
		{`{"jsonrpc":"2.0",`, ErrSyntax},
		{``, ErrSyntax},
	} {
		if _, err := Parse([]byte(tt.in)); err != tt.want {
			t.Errorf("%s: got %v, want %v", tt.in, err, tt.want)
		}
	}
}

func TestWithIDAndAppend(t *testing.T) {
	m, _ := Parse([]byte(`{"jsonrpc":"2.0","id":"tg-1","result":{"a":1}}`))
	if got := string(m.WithID([]byte(`17`))); got != `{"jsonrpc":"2.0","id":17,"result":{"a":1}}` {
		t.Errorf("WithID: %s", got)
	}
	if got := string(AppendError(nil, nil, -32600, "bad \"x\"", []byte(`{"k":1}`))); got != `{"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"bad \"x\"","data":{"k":1}}}` {
		t.Errorf("AppendError: %s", got)
	}
	e := DecodeError([]byte(`{"code":-32002,"message":"not found","data":{"uri":"x"}}`))
	if e.Code != -32002 || e.Message != "not found" || string(e.Data) != `{"uri":"x"}` {
		t.Errorf("DecodeError: %+v", e)
	}
	if got := string(AppendRequest(nil, nil, "notifications/x", nil)); got != `{"jsonrpc":"2.0","method":"notifications/x"}` {
		t.Errorf("AppendRequest: %s", got)
	}
}

func TestAppendParams(t *testing.T) {
	params := []byte(`{"_meta":{"progress":"no","traceparent":"00-old","x":{"y":[1,2]},"esc":"a\u00e9"},"arguments":{"big":12345678901234567890},"name":"w_get"}`)
	meta, err := MetaView(Get(params, "_meta"))
	if err != nil {
		t.Fatal(err)
	}
	meta["traceparent"] = "00-new"
	meta["tracestate"] = "k=v"
	delete(meta, "progress")
	got := string(AppendParams(nil, params, []Set{{Key: "name", Value: []byte(`"get"`)}, {Key: "extra", Value: []byte(`true`)}}, meta))
	want := `{"_meta":{"traceparent":"00-new","x":{"y":[1,2]},"esc":"a\u00e9","tracestate":"k=v"},"arguments":{"big":12345678901234567890},"name":"get","extra":true}`
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	// Written in place in a request, the same params.
	req := string(AppendRequestParams(nil, []byte(`3`), "tools/call", params, []Set{{Key: "name", Value: []byte(`"get"`)}, {Key: "extra", Value: []byte(`true`)}}, meta))
	if want := `{"jsonrpc":"2.0","id":3,"method":"tools/call","params":` + want + `}`; req != want {
		t.Errorf("AppendRequestParams: got  %s\nwant %s", req, want)
	}
	// No _meta and no params: the trace fields make one.
	if got := string(AppendParams(nil, nil, nil, map[string]any{"traceparent": "00-x"})); got != `{"_meta":{"traceparent":"00-x"}}` {
		t.Errorf("got %s", got)
	}
	// A nil Value removes a member.
	if got := string(AppendParams(nil, []byte(`{"a":1,"b":2}`), []Set{{Key: "a"}}, nil)); got != `{"b":2}` {
		t.Errorf("got %s", got)
	}
	if _, err := MetaView([]byte(`{"traceparent":"a","traceparent":"b"}`)); err != ErrRepeated {
		t.Errorf("repeated _meta key: %v", err)
	}
}

// FuzzAppendParams checks the forwarding rewrite on arbitrary params:
// whatever a client sent, what a backend gets is valid JSON, with the
// replaced member, every other member as it was, and exactly the _meta
// the tracer asked for.
func FuzzAppendParams(f *testing.F) {
	for _, s := range []string{
		`{"name":"a_b"}`,
		`{"_meta":{"progress":1,"traceparent":"00-x","k":[{}]},"arguments":{"q":"\u00e9"},"name":"a_b","extra":true}`,
		`{"arguments":null,"name":"n"}`, `{}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, params []byte) {
		var sent map[string]json.RawMessage
		if !json.Valid(params) || json.Unmarshal(params, &sent) != nil || sent == nil {
			return
		}
		if _, err := EachMember(params, 0, func(Member) bool { return true }); err != nil {
			return
		}
		var meta map[string]any
		if raw := Get(params, "_meta"); raw != nil {
			if raw[0] != '{' {
				return
			}
			var err error
			if meta, err = MetaView(raw); err != nil {
				return
			}
		}
		if meta == nil {
			meta = map[string]any{}
		}
		meta["traceparent"] = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
		out := AppendParams(nil, params, []Set{{Key: "name", Value: []byte(`"orig"`)}}, meta)
		var got map[string]json.RawMessage
		if err := json.Unmarshal(out, &got); err != nil {
			t.Fatalf("%s -> invalid JSON %s: %v", params, out, err)
		}
		if string(got["name"]) != `"orig"` {
			t.Fatalf("%s -> name %s", params, got["name"])
		}
		for k, v := range sent {
			if k == "name" || k == "_meta" {
				continue
			}
			var a, b any
			json.Unmarshal(v, &a)
			json.Unmarshal(got[k], &b)
			if !reflect.DeepEqual(a, b) {
				t.Fatalf("%s -> params.%s = %s, sent %s", params, k, got[k], v)
			}
		}
		var gotMeta map[string]any
		if err := json.Unmarshal(got["_meta"], &gotMeta); err != nil {
			t.Fatalf("%s -> _meta %s: %v", params, got["_meta"], err)
		}
		if len(gotMeta) != len(meta) || gotMeta["traceparent"] != meta["traceparent"] {
			t.Fatalf("%s -> _meta %v, want the keys of %v", params, gotMeta, meta)
		}
	})
}

// BenchmarkRewrite is the pipeline's own byte work on a typical call,
// both ways: parse the client's message, rewrite its params for the
// backend, and give the backend's answer the client's id.
func BenchmarkRewrite(b *testing.B) {
	body := []byte(`{"jsonrpc":"2.0","id":17,"method":"tools/call","params":{"name":"weather_get_weather","arguments":{"city":"Lisbon","days":3},"_meta":{"traceparent":"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01","x.example/tenant":{"id":7}}}}`)
	answer := []byte(`{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"Lisbon: 21C, clear"}],"isError":false}}`)
	sets := []Set{{Key: "name", Value: []byte(`"get_weather"`)}}
	b.ReportAllocs()
	for b.Loop() {
		m, _ := Parse(body)
		meta, _ := MetaView(Get(m.Params, "_meta"))
		meta["traceparent"] = "00-4bf92f3577b34da6a3ce929d0e0e4736-b7ad6b7169203331-01"
		AppendRequestParams(make([]byte, 0, len(m.Params)+128), []byte("1"), m.Method, m.Params, sets, meta)
		a, _ := Parse(answer)
		a.WithID(m.ID)
	}
}
