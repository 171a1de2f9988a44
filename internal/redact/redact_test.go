package redact

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

const secret = "s3cr3t-VALUE-42"

func TestURL(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"http://127.0.0.1:9001/mcp", "http://127.0.0.1:9001/mcp"},
		{"http://u:" + secret + "@host:9/mcp", "http://REDACTED@host:9/mcp"},
		{"https://" + secret + "@github.com/x", "https://REDACTED@github.com/x"},
		{"http://host/mcp?api_key=" + secret, "http://host/mcp?api_key=REDACTED"},
		{"http://host/mcp?region=eu&access_token=" + secret + "&page=2", "http://host/mcp?region=eu&access_token=REDACTED&page=2"},
		{"http://host/?X-Amz-Signature=" + secret + "&X-Amz-Date=1", "http://host/?X-Amz-Signature=REDACTED&X-Amz-Date=1"},
		{"http://host/?sig=" + secret, "http://host/?sig=REDACTED"},
		{"http://host/?password=" + secret + "#frag", "http://host/?password=REDACTED#frag"},
		{"http://host/cb#access_token=" + secret + "&state=1", "http://host/cb#access_token=REDACTED&state=1"},
		{"http://host/?signal=traces&compass=n", "http://host/?signal=traces&compass=n"},
		{"http://a:b@host/?Client_Secret=" + secret, "http://REDACTED@host/?Client_Secret=REDACTED"},
		{"http://host/?api%5Fkey=" + secret, "http://host/?api%5Fkey=REDACTED"},
		{"not a url, token=" + secret, "not a url, token=REDACTED"},
	}
	for _, tt := range tests {
		if got := URL(tt.in); got != tt.want {
			t.Errorf("URL(%q)\n got  %q\n want %q", tt.in, got, tt.want)
		}
	}
}

func TestString(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in string
		secrets  []string
		want     string
	}{
		{"http client error",
			`Post "http://u:` + secret + `@10.0.0.7:9001/mcp?api_key=` + secret + `": dial tcp 10.0.0.7:9001: connect: connection refused`, nil,
			`Post "http://REDACTED@10.0.0.7:9001/mcp?api_key=REDACTED": dial tcp 10.0.0.7:9001: connect: connection refused`},
		{"wrapped twice",
			`backend "weather": failed to reconnect: connecting: Get "https://h/sse?token=` + secret + `": EOF`, nil,
			`backend "weather": failed to reconnect: connecting: Get "https://h/sse?token=REDACTED": EOF`},
		{"two urls", "from http://a:" + secret + "@x/ to https://y/?key=" + secret + " done", nil,
			"from http://REDACTED@x/ to https://y/?key=REDACTED done"},
		{"bare pair", "retrying with client_secret=" + secret + ", attempt 2", nil, "retrying with client_secret=REDACTED, attempt 2"},
		{"bearer", "401: Authorization: Bearer " + secret + " refused", nil, "401: Authorization: Bearer REDACTED refused"},
		{"configured header value", "server said: bad key " + secret + "!", []string{secret}, "server said: bad key REDACTED!"},
		{"percent-encoded secret", "GET /x?q=" + "a%2Fb%2Bc%3D" + " failed", []string{"a/b+c="}, "GET /x?q=REDACTED failed"},
		{"short secret ignored", "abc abc", []string{"abc"}, "abc abc"},
		{"nothing to do", `backend "files" is unavailable: session ended: EOF`, nil, `backend "files" is unavailable: session ended: EOF`},
		{"harmless pair kept", "state=down attempt=3", nil, "state=down attempt=3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := String(tt.in, tt.secrets...)
			if got != tt.want {
				t.Errorf("String\n got  %q\n want %q", got, tt.want)
			}
			for _, s := range append([]string{secret}, tt.secrets...) {
				if len(s) >= MinSecretLen && strings.Contains(got, s) {
					t.Errorf("secret %q survived in %q", s, got)
				}
			}
		})
	}
}

// TestErrorFromRealClient plants the secret in a URL's user info and query
// and in a header value, makes a real HTTP client fail against a real
// listener, and checks that no form of the secret survives in the error.
func TestErrorFromRealClient(t *testing.T) {
	t.Parallel()
	// A listener that closes every connection at once: the client fails
	// with an error that quotes the request URL.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	u := "http://user:" + secret + "@" + ln.Addr().String() + "/mcp?api_key=" + secret + "&x=1"
	req, _ := http.NewRequestWithContext(context.Background(), http.MethodPost, u, nil)
	req.Header.Set("Authorization", "Bearer "+secret)
	_, err = http.DefaultClient.Do(req)
	if err == nil {
		t.Fatal("request to a closing listener succeeded")
	}
	wrapped := fmt.Errorf("backend %q: failed to reconnect: %w", "weather", err)
	if !strings.Contains(wrapped.Error(), secret) {
		t.Fatalf("the client's error no longer quotes the secret, so this test proves nothing: %v", wrapped)
	}
	got := Error(wrapped, HeaderSecrets(map[string]string{"Authorization": "Bearer " + secret})...)
	if strings.Contains(got, secret) {
		t.Errorf("secret survived: %s", got)
	}
	if !strings.Contains(got, ln.Addr().String()) || !strings.Contains(got, "failed to reconnect") {
		t.Errorf("redaction lost what failed and where: %s", got)
	}
	if Error(nil) != "" {
		t.Error("Error(nil) is not empty")
	}
}

func TestHeaders(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for k, vs := range Headers(r.Header) {
			for _, v := range vs {
				fmt.Fprintf(w, "%s: %s\n", k, v)
			}
		}
	}))
	defer srv.Close()
	req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
	req.Header.Set("Authorization", "Bearer "+secret)
	req.Header.Set("X-Api-Key", secret)
	req.Header.Set("X-Upstream-Token", secret)
	req.Header.Set("Cookie", "sid="+secret)
	req.Header.Set("Referer", "https://x/?access_token="+secret)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := resp.Body.Read(buf)
		b.WriteString(string(buf[:n]))
		if err != nil {
			break
		}
	}
	got := b.String()
	if strings.Contains(got, secret) {
		t.Errorf("secret survived Headers:\n%s", got)
	}
	for _, want := range []string{"Authorization: REDACTED", "X-Api-Key: REDACTED", "X-Upstream-Token: REDACTED", "Cookie: REDACTED", "access_token=REDACTED", "Accept: text/event-stream"} {
		if !strings.Contains(got, want) {
			t.Errorf("missing %q in:\n%s", want, got)
		}
	}

	h := http.Header{"Authorization": {"Bearer " + secret}}
	_ = Headers(h)
	if h.Get("Authorization") != "Bearer "+secret {
		t.Error("Headers changed its input")
	}
}

func TestHeaderSecrets(t *testing.T) {
	t.Parallel()
	got := HeaderSecrets(map[string]string{"Authorization": "Bearer " + secret, "X-Region": "eu-west-1", "X-Api-Key": "k-" + secret})
	want := []string{"Bearer " + secret, "k-" + secret, secret}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("HeaderSecrets = %q, want %q", got, want)
	}
	// Longest first: the whole value goes, not just its credential.
	if s := String("sent Bearer "+secret, got...); s != "sent REDACTED" {
		t.Errorf("String with header secrets = %q", s)
	}
}

func TestRedactor(t *testing.T) {
	t.Parallel()
	r := New("", "ab", secret, secret)
	if got := r.Error(errors.New("x " + secret)); got != "x REDACTED" {
		t.Errorf("Redactor.Error = %q", got)
	}
	var nilR *Redactor
	if got := nilR.String("http://u:p@h/"); got != "http://REDACTED@h/" {
		t.Errorf("nil Redactor.String = %q", got)
	}
	if got := r.Error(nil); got != "" {
		t.Errorf("Redactor.Error(nil) = %q", got)
	}
}

func TestIsCredentialName(t *testing.T) {
	t.Parallel()
	for name, want := range map[string]bool{
		"api_key": true, "apikey": true, "access_token": true, "X-Amz-Signature": true, "sig": true, "db_pwd": true,
		"password": true, "client_secret": true, "Authorization": true, "sid": true,
		"region": false, "page": false, "signal": false, "compass": false, "format": false, "tool": false,
	} {
		if got := IsCredentialName(name); got != want {
			t.Errorf("IsCredentialName(%q) = %v, want %v", name, got, want)
		}
	}
}

func BenchmarkStringClean(b *testing.B) {
	s := `backend "weather" did not answer within 30s`
	r := New("Bearer "+secret, secret)
	b.ReportAllocs()
	for b.Loop() {
		_ = r.String(s)
	}
}
