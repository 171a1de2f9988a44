package wire

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

// members returns what EachMember finds in data, as key -> raw value.
func members(data []byte) (map[string]string, []string, error) {
	got := map[string]string{}
	var order []string
	_, err := EachMember(data, 0, func(m Member) bool {
		k := m.Key(data)
		got[k] = string(data[m.ValStart:m.ValEnd])
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

func TestAppendString(t *testing.T) {
	for _, s := range []string{"", "plain", `q"b\`, "ctl\x00\x1f\x7f\n\t\r", "ünï €"} {
		out := AppendString(nil, s)
		var back string
		if err := json.Unmarshal(out, &back); err != nil || back != s {
			t.Errorf("%q -> %s -> %q (%v)", s, out, back, err)
		}
	}
}

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
		Parse(data)
		MetaView(data)
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
