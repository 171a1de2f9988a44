package gateway

import (
	"bytes"
	"encoding/json"
	"io"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

// members returns what eachMember finds in data, as key -> raw value.
func members(data []byte) (map[string]string, []string, error) {
	got := map[string]string{}
	var order []string
	_, err := eachMember(data, 0, func(m member) bool {
		k := m.key(data)
		got[k] = string(data[m.valStart:m.valEnd])
		order = append(order, k)
		return true
	})
	return got, order, err
}

func TestEachMember(t *testing.T) {
	data := []byte(` { "a" : 1 , "b\"q":"x\\y", "c":{"d":[1,{"e":null}],"f":"}"}, "g":[] ,"h":{},"i":-1.5e+3,"j":true,"k":false,"\u006c":"u"} `)
	got, order, err := members(data)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"a": "1", `b"q`: `"x\\y"`, "c": `{"d":[1,{"e":null}],"f":"}"}`, "g": "[]", "h": "{}",
		"i": "-1.5e+3", "j": "true", "k": "false", "l": `"u"`,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v\nwant %v", got, want)
	}
	if strings.Join(order, ",") != `a,b"q,c,g,h,i,j,k,l` {
		t.Errorf("order %v", order)
	}
}

func TestEachMemberRejectsMalformed(t *testing.T) {
	for _, in := range []string{
		``, `[]`, `{`, `{"a"}`, `{"a":}`, `{"a":1,}`, `{"a":1 "b":2}`, `{"a":"x}`, `{"a":tru}`,
		`{"a":[1,2}`, `{a:1}`, "{\"a\":\"\x01\"}", `{"a":{"b":1}`, `{"a":"\`,
	} {
		if _, _, err := members([]byte(in)); err == nil {
			t.Errorf("%q: no error", in)
		}
	}
	deep := []byte(`{"a":` + strings.Repeat("[", maxScanDepth+1) + strings.Repeat("]", maxScanDepth+1) + `}`)
	if _, _, err := members(deep); err == nil {
		t.Error("nesting past the limit was accepted")
	}
}

func TestParseEnvelope(t *testing.T) {
	e, ok := parseEnvelope([]byte(`{"jsonrpc":"2.0","id":"abc","method":"tools/call","params":{"name":"x"}}`))
	if !ok || string(e.id) != `"abc"` || e.method != "tools/call" || string(e.params) != `{"name":"x"}` || e.isResponse() {
		t.Errorf("request: %+v %v", e, ok)
	}
	e, ok = parseEnvelope([]byte(`{"id":7,"jsonrpc":"2.0","result":{"isError":true}}`))
	if !ok || !e.isResponse() || !isToolError(e.result) {
		t.Errorf("response: %+v %v", e, ok)
	}
	for _, in := range []string{
		`[{"jsonrpc":"2.0","id":1,"method":"ping"}]`,        // batch
		`{"jsonrpc":"1.0","id":1,"method":"ping"}`,          // not 2.0
		`{"jsonrpc":"2.0","id":null,"method":"ping"}`,       // null id
		`{"jsonrpc":"2.0","id":{"a":1},"method":"ping"}`,    // structured id
		`{"jsonrpc":"2.0","id":1,"method":3}`,               // method not a string
		`{"jsonrpc":"2.0","\u0069d":1,"method":"ping"}`,     // escaped key
		`{"jsonrpc":"2.0","id":1,"method":"ping"} trailing`, // garbage after
		`{"jsonrpc":"2.0","id":1,"id":2,"method":"ping"}`,   // a repeated member
	} {
		if _, ok := parseEnvelope([]byte(in)); ok {
			t.Errorf("%s: accepted", in)
		}
	}
}

// Repeated members of params or _meta leave the call to the SDK: which
// value counts is up to each decoder, and routing must not disagree with
// what the backend reads.
func TestRepeatedMembersAreNotForwarded(t *testing.T) {
	if _, ok := parseCallParams([]byte(`{"name":"a_x","arguments":{},"name":"a_y"}`)); ok {
		t.Error("two names accepted")
	}
	if _, _, ok := metaView([]byte(`{"traceparent":"a","traceparent":"b"}`)); ok {
		t.Error("two traceparents accepted")
	}
}

func TestBackendBody(t *testing.T) {
	body := []byte(`{"jsonrpc":"2.0","id":12,"method":"tools/call","params":{"_meta":{"progress":"no","traceparent":"00-old","x":{"y":[1,2]},"io.modelcontextprotocol/logLevel":"debug","esc":"a\u00e9"},"arguments":{"big":12345678901234567890},"name":"w_get"}}`)
	env, _ := parseEnvelope(body)
	p, ok := parseCallParams(env.params)
	if !ok {
		t.Fatal("params")
	}
	meta, progress, ok := metaView(p.meta)
	if !ok || progress {
		t.Fatal("meta")
	}
	// What the middleware leaves: hop keys stripped, traceparent replaced,
	// tracestate added.
	meta = stripHopMeta(meta)
	meta["traceparent"] = "00-new"
	meta["tracestate"] = "k=v"
	fc := &fastCall{body: body, rawParams: env.params, route: &toolRoute{original: "get"}, backendID: []byte(`"tg-1"`)}
	out, err := fc.backendBody(meta)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"jsonrpc":"2.0","id":"tg-1","method":"tools/call","params":{"name":"get","_meta":{"progress":"no","traceparent":"00-new","x":{"y":[1,2]},"esc":"a\u00e9","tracestate":"k=v"},"arguments":{"big":12345678901234567890}}}`
	if string(out) != want {
		t.Errorf("got  %s\nwant %s", out, want)
	}
	if !json.Valid(out) {
		t.Error("not valid JSON")
	}

	// No _meta from the client: one is added for the trace fields.
	body = []byte(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"w_get"}}`)
	env, _ = parseEnvelope(body)
	fc = &fastCall{body: body, rawParams: env.params, route: &toolRoute{original: "get"}, backendID: []byte(`"tg-2"`)}
	out, _ = fc.backendBody(map[string]any{"traceparent": "00-x"})
	if want := `{"jsonrpc":"2.0","id":"tg-2","method":"tools/call","params":{"name":"get","_meta":{"traceparent":"00-x"}}}`; string(out) != want {
		t.Errorf("got  %s\nwant %s", out, want)
	}
}

func TestAppendString(t *testing.T) {
	for _, s := range []string{"", "plain", `q"b\`, "ctl\x00\x1f\x7f\n\t\r", "ünï €"} {
		out := appendString(nil, s)
		var back string
		if err := json.Unmarshal(out, &back); err != nil || back != s {
			t.Errorf("%q -> %s -> %q (%v)", s, out, back, err)
		}
	}
}

func TestSSEReader(t *testing.T) {
	in := ": comment\r\nevent: message\r\nid: 1\r\ndata: {\"a\":\r\ndata: 1}\r\n\r\n" +
		"data:{\"b\":2}\n\n" +
		"event: ping\n\n" + // no data: no event
		"data: {\"c\":3}\n" // cut off: dropped
	r := newSSEReader(strings.NewReader(in), 1<<20)
	var got []string
	for {
		d, err := r.next()
		if err != nil {
			if err != io.EOF && err != io.ErrUnexpectedEOF {
				t.Fatal(err)
			}
			break
		}
		got = append(got, string(d))
	}
	if want := []string{"{\"a\":\n1}", `{"b":2}`}; !reflect.DeepEqual(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
	big := "data: " + strings.Repeat("x", 100) + "\n\n"
	if _, err := newSSEReader(strings.NewReader(big), 50).next(); err != errEventTooLarge {
		t.Errorf("oversized event: %v", err)
	}
}

// FuzzEachMember checks the scanner against encoding/json: on valid JSON
// objects it finds the same members with the same values, and on any input
// it does not panic.
func FuzzEachMember(f *testing.F) {
	for _, s := range []string{
		`{}`, `{"a":1}`, `{"a":{"b":[1,"x",null,true]},"c":"\u00e9\""}`, `{"a":1,"a":2}`,
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"n","_meta":{"traceparent":"00-x"}}}`,
		`{"a":[`, `{"a":"\`, `nul`, `{"a":-}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		got, _, err := members(data)
		parseEnvelope(data)
		newSSEReader(bytes.NewReader(data), 1<<16).next()
		var want map[string]json.RawMessage
		// encoding/json replaces invalid UTF-8 in keys; the scanner keeps
		// bytes as they are, which is what forwarding wants.
		if !utf8.Valid(data) || json.Unmarshal(data, &want) != nil || want == nil {
			return
		}
		if err != nil {
			t.Fatalf("valid object %q: %v", data, err)
		}
		if len(got) != len(want) {
			t.Fatalf("%q: %d members, encoding/json finds %d", data, len(got), len(want))
		}
		for k, v := range want {
			var a, b any
			json.Unmarshal(v, &a)
			if json.Unmarshal([]byte(got[k]), &b) != nil || !reflect.DeepEqual(a, b) {
				t.Fatalf("%q: member %q = %s, encoding/json says %s", data, k, got[k], v)
			}
		}
	})
}

// FuzzBackendBody checks the forwarding rewrite on arbitrary tools/call
// messages: whatever the client sent, the message the backend gets is valid
// JSON, carries the backend's id and the tool's original name, keeps every
// other params member as it was, and has in _meta exactly what the
// middleware left there.
func FuzzBackendBody(f *testing.F) {
	for _, s := range []string{
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a_b"}}`,
		`{"jsonrpc":"2.0","id":"x","method":"tools/call","params":{"_meta":{"progress":1,"traceparent":"00-x","k":[{}]},"arguments":{"q":"\u00e9"},"name":"a_b","extra":true}}`,
		`{"params":{"arguments":null,"name":"n"},"method":"tools/call","id":-1.5e3,"jsonrpc":"2.0"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		env, ok := parseEnvelope(body)
		if !ok || env.params == nil || !json.Valid(body) {
			return
		}
		p, ok := parseCallParams(env.params)
		if !ok {
			return
		}
		meta, _, ok := metaView(p.meta)
		if !ok {
			return
		}
		meta = stripHopMeta(meta)
		if meta == nil {
			meta = map[string]any{}
		}
		meta["traceparent"] = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
		fc := &fastCall{body: body, rawParams: env.params, route: &toolRoute{original: "orig"}, backendID: []byte(`"tg-9"`)}
		out, err := fc.backendBody(meta)
		if err != nil {
			return
		}
		var got struct {
			ID     string                     `json:"id"`
			Params map[string]json.RawMessage `json:"params"`
		}
		if err := json.Unmarshal(out, &got); err != nil {
			t.Fatalf("%s -> invalid JSON %s: %v", body, out, err)
		}
		var sent map[string]json.RawMessage
		json.Unmarshal(env.params, &sent)
		if got.ID != "tg-9" || string(got.Params["name"]) != `"orig"` {
			t.Fatalf("%s -> id %q name %s", body, got.ID, got.Params["name"])
		}
		for k, v := range sent {
			if k == "name" || k == "_meta" {
				continue
			}
			if !bytes.Equal(bytes.TrimSpace(got.Params[k]), bytes.TrimSpace(v)) {
				t.Fatalf("%s -> params.%s = %s, sent %s", body, k, got.Params[k], v)
			}
		}
		var gotMeta map[string]any
		if err := json.Unmarshal(got.Params["_meta"], &gotMeta); err != nil {
			t.Fatalf("%s -> _meta %s: %v", body, got.Params["_meta"], err)
		}
		if len(gotMeta) != len(meta) || gotMeta["traceparent"] != meta["traceparent"] {
			t.Fatalf("%s -> _meta %v, want the keys of %v", body, gotMeta, meta)
		}
	})
}

// BenchmarkForwardRewrite is the forwarding path's own work on a typical
// call, both ways: scan the client's message, rewrite it for the backend,
// and rewrite the backend's answer for the client. The rest of a forwarded
// call is the HTTP exchange and the middleware.
func BenchmarkForwardRewrite(b *testing.B) {
	body := []byte(`{"jsonrpc":"2.0","id":17,"method":"tools/call","params":{"name":"weather_get_weather","arguments":{"city":"Lisbon","days":3},"_meta":{"traceparent":"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01","x.example/tenant":{"id":7}}}}`)
	answer := []byte(`{"jsonrpc":"2.0","id":"tg-1","result":{"content":[{"type":"text","text":"Lisbon: 21C, clear"}],"isError":false}}`)
	route := &toolRoute{original: "get_weather"}
	b.ReportAllocs()
	for b.Loop() {
		env, _ := parseEnvelope(body)
		p, _ := parseCallParams(env.params)
		meta, _, _ := metaView(p.meta)
		meta["traceparent"] = "00-4bf92f3577b34da6a3ce929d0e0e4736-b7ad6b7169203331-01"
		fc := &fastCall{body: body, rawParams: env.params, route: route, clientID: env.id, backendID: []byte(`"tg-1"`)}
		if _, err := fc.backendBody(meta); err != nil {
			b.Fatal(err)
		}
		a, _ := parseEnvelope(answer)
		msg := make([]byte, 0, len(answer)+len(fc.clientID))
		msg = append(append(append(msg, answer[:a.idStart]...), fc.clientID...), answer[a.idEnd:]...)
		if !isToolError(a.result) && len(msg) == 0 {
			b.Fatal("empty answer")
		}
	}
}
