// Package browsertest runs tests against a real headless Chromium through
// the DevTools protocol, and knows the DOM hooks of tracegate's trace
// viewer (internal/traceview/ui), so that tests can open a trace, read its
// waterfall and click through it.
//
// A test calls New, which starts a fresh browser for that test:
//
//	ctx := browsertest.New(t)
//	if err := browsertest.OpenTrace(ctx, adminURL, traceID); err != nil { … }
//	rows, err := browsertest.SpanRows(ctx)
//
// When no Chromium binary is found, New skips the test, unless
// TRACEGATE_REQUIRE_BROWSER is set, in which case it fails it: CI sets the
// variable so that a missing browser cannot pass as green.
package browsertest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

const (
	// RequireEnv, when set to anything, turns "no browser found" from a
	// skip into a failure.
	RequireEnv = "TRACEGATE_REQUIRE_BROWSER"
	// ChromiumEnv names the browser binary, overriding the search.
	ChromiumEnv = "TRACEGATE_CHROMIUM"
)

// Timeout bounds everything one test does with its browser.
const Timeout = 90 * time.Second

// Viewport is the browser window size, in CSS pixels.
const (
	ViewportWidth  = 1440
	ViewportHeight = 900
)

// candidates are the usual names of the browser binary, Debian's first.
var candidates = []string{
	"/usr/bin/chromium",
	"chromium",
	"chromium-browser",
	"google-chrome-stable",
	"google-chrome",
	"headless-shell",
}

// FindChromium returns the path of a Chromium binary: ChromiumEnv if set,
// else the first candidate on the system.
func FindChromium() (string, error) {
	if p := os.Getenv(ChromiumEnv); p != "" {
		if _, err := exec.LookPath(p); err != nil {
			return "", fmt.Errorf("%s=%q: %w", ChromiumEnv, p, err)
		}
		return p, nil
	}
	for _, c := range candidates {
		if p, err := exec.LookPath(c); err == nil {
			return p, nil
		}
	}
	return "", errors.New("no Chromium binary found (tried /usr/bin/chromium, chromium, chromium-browser, google-chrome; install the Debian package chromium or set " + ChromiumEnv + ")")
}

// session is what New keeps per browser, reachable from the context.
type session struct {
	mu      sync.Mutex
	console []chromedp.ConsoleMessage
}

type sessionKey struct{}

// New starts a headless Chromium for tb and returns a context bound to one
// tab of it, with Timeout as deadline. The browser runs with a fresh,
// temporary profile, and is shut down, its profile removed, when tb ends.
//
// New skips tb when no browser is found and RequireEnv is unset, and fails
// it when the browser is missing but required, or cannot start.
func New(tb testing.TB) context.Context {
	tb.Helper()
	path, err := FindChromium()
	if err != nil {
		if os.Getenv(RequireEnv) != "" {
			tb.Fatalf("browser test: %v; %s is set, so this is a failure", err, RequireEnv)
		}
		tb.Skipf("browser test skipped: %v; set %s=1 to make this a failure", err, RequireEnv)
	}

	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-default-apps", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-features", "Translate,MediaRouter,OptimizationHints"),
		chromedp.Flag("force-color-profile", "srgb"),
		chromedp.Flag("password-store", "basic"),
		chromedp.WindowSize(ViewportWidth, ViewportHeight),
		// No UserDataDir: the allocator then makes a fresh temporary
		// profile per browser and removes it, retrying while Chromium's
		// helper processes still write to it.
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	browserCtx, cancelBrowser := chromedp.NewContext(allocCtx, chromedp.WithLogf(tb.Logf))
	// Console starts the browser and its first tab, and binds the
	// browser's life to browserCtx, which has no deadline; the deadline
	// goes on the context returned. Subscribing before the first page
	// loads lets ConsoleErrors see everything.
	sess, done := collectConsole(browserCtx)
	if err := chromedp.Do(browserCtx, chromedp.EmulateViewport(ViewportWidth, ViewportHeight)); err != nil {
		cancelBrowser()
		cancelAlloc()
		<-done
		tb.Fatalf("browser test: start %s: %v", path, err)
	}
	ctx, cancel := context.WithTimeout(context.WithValue(browserCtx, sessionKey{}, sess), Timeout)
	tb.Cleanup(func() {
		cancel()
		cancelBrowser()
		cancelAlloc() // waits for the browser process to exit
		<-done
	})
	return ctx
}

// NewTab opens another tab in the browser of ctx (a context from New),
// closed when tb ends. Tabs of one browser may be driven in parallel.
func NewTab(tb testing.TB, ctx context.Context) context.Context {
	tb.Helper()
	tabCtx, cancel := chromedp.NewContext(ctx)
	sess, done := collectConsole(tabCtx)
	if err := chromedp.Do(tabCtx, chromedp.EmulateViewport(ViewportWidth, ViewportHeight)); err != nil {
		cancel()
		<-done
		tb.Fatalf("browser test: open tab: %v", err)
	}
	tb.Cleanup(func() {
		cancel()
		<-done
	})
	return context.WithValue(tabCtx, sessionKey{}, sess)
}

// collectConsole records the console of ctx's tab until ctx ends; done is
// closed when the recording stops.
func collectConsole(ctx context.Context) (*session, <-chan struct{}) {
	sess := &session{}
	messages := chromedp.Console(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for m, err := range messages {
			if err != nil {
				return
			}
			sess.mu.Lock()
			sess.console = append(sess.console, m)
			sess.mu.Unlock()
		}
	}()
	return sess, done
}

// ConsoleErrors returns the console errors and uncaught exceptions the
// pages of ctx's browser have produced so far, as text.
func ConsoleErrors(ctx context.Context) []string {
	sess, _ := ctx.Value(sessionKey{}).(*session)
	if sess == nil {
		return nil
	}
	sess.mu.Lock()
	defer sess.mu.Unlock()
	var out []string
	for _, m := range sess.console {
		if m.Type == chromedp.ConsoleError || m.IsException() {
			out = append(out, m.String())
		}
	}
	return out
}
