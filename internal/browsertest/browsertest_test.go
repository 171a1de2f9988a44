package browsertest

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

func TestFindChromiumOverride(t *testing.T) {
	tests := []struct {
		env     string
		want    string
		wantErr bool
	}{
		{"/nonexistent/chromium", "", true},
		{"/bin/sh", "/bin/sh", false},
	}
	for _, tt := range tests {
		t.Run(tt.env, func(t *testing.T) {
			t.Setenv(ChromiumEnv, tt.env)
			got, err := FindChromium()
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("got %q, %v; want %q, error %v", got, err, tt.want, tt.wantErr)
			}
			if err != nil && !strings.Contains(err.Error(), ChromiumEnv) {
				t.Errorf("error %q does not name %s", err, ChromiumEnv)
			}
		})
	}
}

// TestNewWithoutBrowser runs New in a child test process with no browser
// to be found: it must skip, or fail when RequireEnv is set.
func TestNewWithoutBrowser(t *testing.T) {
	if os.Getenv("BROWSERTEST_CHILD") == "1" {
		New(t)
		t.Log("New returned")
		return
	}
	t.Parallel()
	tests := []struct {
		name    string
		require bool
		want    string
		wantErr bool
	}{
		{"skips", false, "--- SKIP", false},
		{"fails when required", true, "--- FAIL", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cmd := exec.Command(os.Args[0], "-test.run=^TestNewWithoutBrowser$", "-test.v")
			cmd.Env = append(os.Environ(), "BROWSERTEST_CHILD=1", ChromiumEnv+"=/nonexistent/chromium", RequireEnv+"=")
			if tt.require {
				cmd.Env = append(cmd.Env, RequireEnv+"=1")
			}
			out, err := cmd.CombinedOutput()
			if (err != nil) != tt.wantErr || !strings.Contains(string(out), tt.want) || strings.Contains(string(out), "New returned") {
				t.Errorf("got error %v and output:\n%s\nwant %q", err, out, tt.want)
			}
		})
	}
}

func TestConsoleErrorsPerTab(t *testing.T) {
	t.Parallel()
	ctx := New(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		msg := r.URL.Query().Get("m")
		_, _ = w.Write([]byte(`<!doctype html><title>t</title><script>console.error(` + "`" + msg + "`" + `)</script>`))
	}))
	t.Cleanup(srv.Close)

	tab := NewTab(t, ctx)
	for _, c := range []struct {
		ctx context.Context
		msg string
	}{{ctx, "first-tab"}, {tab, "second-tab"}} {
		if err := chromedp.Do(c.ctx, chromedp.Navigate(srv.URL+"/?m="+c.msg)); err != nil {
			t.Fatalf("navigate: %v", err)
		}
	}
	for _, c := range []struct {
		ctx       context.Context
		want, not string
		whichTab  string
	}{{ctx, "first-tab", "second-tab", "first"}, {tab, "second-tab", "first-tab", "second"}} {
		got := waitConsole(t, c.ctx, c.want)
		if slices.ContainsFunc(got, func(s string) bool { return strings.Contains(s, c.not) }) {
			t.Errorf("%s tab: got %q, want no %q", c.whichTab, got, c.not)
		}
	}
}

// waitConsole polls until a console error containing want is recorded;
// messages arrive asynchronously from the browser.
func waitConsole(t *testing.T, ctx context.Context, want string) []string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := ConsoleErrors(ctx)
		if slices.ContainsFunc(got, func(s string) bool { return strings.Contains(s, want) }) {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("console errors: got %q, want one containing %q", got, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
