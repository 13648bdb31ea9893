package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	cdppage "github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

const defaultChromium = "/usr/bin/chromium"

// chromiumPath finds the browser. A missing browser fails the test: a
// skipped browser test would read as a passing one.
func chromiumPath(t *testing.T) string {
	t.Helper()
	p := os.Getenv("CRISISROOM_CHROMIUM")
	if p == "" {
		p = defaultChromium
	}
	if _, err := exec.LookPath(p); err != nil {
		t.Fatalf("the browser tests need Chromium, not found at %s (%v): install it (apt-get install chromium) or set CRISISROOM_CHROMIUM to its path", p, err)
	}
	return p
}

// newBrowser starts one headless Chromium with fake camera and microphone
// (a moving test pattern and a periodic beep) and a fresh profile. Each page
// then opens in its own browser context: separate storage, like two people.
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	out := &syncBuffer{}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("use-fake-device-for-media-stream", true),
		chromedp.Flag("use-fake-ui-for-media-stream", true),
		chromedp.Flag("autoplay-policy", "no-user-gesture-required"),
		// Pages in the background must keep their timers and media going.
		chromedp.Flag("disable-background-timer-throttling", true),
		chromedp.Flag("disable-renderer-backgrounding", true),
		chromedp.Flag("disable-backgrounding-occluded-windows", true),
		chromedp.CombinedOutput(out),
	}
	actx, acancel := chromedp.NewExecAllocator(context.Background(), opts...)
	bctx, bcancel := chromedp.NewContext(actx)
	t.Cleanup(func() {
		bcancel()
		acancel()
		if t.Failed() {
			t.Logf("chromium output:\n%s", tail(out.String(), 4000))
		}
	})
	if err := chromedp.Do(bctx); err != nil {
		t.Fatalf("start Chromium: %v\n%s", err, tail(out.String(), 2000))
	}
	return bctx
}

// page is one tab in its own browser context, with its console collected
// for failure reports.
type page struct {
	t       *testing.T
	name    string
	ctx     context.Context
	console *syncBuffer
	sockets atomic.Int32 // WebSockets the page opened
}

func openPage(t *testing.T, browser context.Context, name string) *page {
	t.Helper()
	p := &page{t: t, name: name, console: &syncBuffer{}}
	ctx, cancel := chromedp.NewContext(browser, chromedp.WithNewBrowserContext(), chromedp.WithListener(p.listen))
	p.ctx = ctx
	t.Cleanup(func() {
		cancel()
		if t.Failed() {
			t.Logf("console of %s:\n%s", name, tail(p.console.String(), 6000))
		}
	})
	// Record CSP violations from the first script on: the page must need
	// neither inline script nor inline style. (DevTools-injected, so the
	// page's own CSP does not apply to this recorder.)
	record := chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, cdppage.AddScriptToEvaluateOnNewDocument, cdppage.AddScriptToEvaluateOnNewDocumentParams{
			Source: `window.__csp = []; document.addEventListener('securitypolicyviolation', (e) => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));`,
		})
		return err
	})
	if err := chromedp.Do(ctx, record); err != nil {
		t.Fatalf("%s: open tab: %v", name, err)
	}
	return p
}

// checkClean asserts the page broke no CSP rule, fetched nothing from
// another origin and threw no uncaught exception.
func (p *page) checkClean() {
	p.t.Helper()
	if v := eval[[]string](p, `window.__csp || []`); len(v) > 0 {
		p.t.Errorf("%s: CSP violations: %v", p.name, v)
	}
	if v := eval[[]string](p, `performance.getEntriesByType('resource').map((e) => e.name).filter((u) => !u.startsWith(location.origin + '/'))`); len(v) > 0 {
		p.t.Errorf("%s: requests to other origins: %v", p.name, v)
	}
	if strings.Contains(p.console.String(), "EXCEPTION") {
		p.t.Errorf("%s: uncaught exception in the page", p.name)
	}
}

func (p *page) listen(ev any) {
	switch e := ev.(type) {
	case *network.EventWebSocketCreated:
		p.sockets.Add(1)
	case *runtime.EventConsoleAPICalled:
		parts := make([]string, 0, len(e.Args))
		for _, a := range e.Args {
			if len(a.Value) > 0 {
				parts = append(parts, string(a.Value))
			} else {
				parts = append(parts, a.Description)
			}
		}
		fmt.Fprintf(p.console, "%s %s\n", e.Type, strings.Join(parts, " "))
	case *runtime.EventExceptionThrown:
		d := e.ExceptionDetails
		desc := d.Text
		if d.Exception != nil {
			desc += " " + d.Exception.Description
		}
		fmt.Fprintf(p.console, "EXCEPTION %s:%d %s\n", d.URL, d.LineNumber, desc)
	}
}

// do runs actions with a bound on their time.
func (p *page) do(what string, timeout time.Duration, actions ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, timeout)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		p.t.Fatalf("%s: %s: %v", p.name, what, err)
	}
}

// eval evaluates a JavaScript expression and decodes its JSON value.
func eval[T any](p *page, js string) T {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 10*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js, chromedp.EvalAwaitPromise))
	if err != nil {
		p.t.Fatalf("%s: eval %q: %v", p.name, js, err)
	}
	return v
}

// waitFor polls a JavaScript predicate until it is truthy.
func (p *page) waitFor(what, js string, timeout time.Duration) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, timeout+5*time.Second)
	defer cancel()
	_, err := chromedp.Run(ctx, chromedp.Poll[bool](js,
		chromedp.WithPollingInterval(100*time.Millisecond), chromedp.WithPollingTimeout(timeout)))
	if err != nil {
		p.t.Fatalf("%s: waiting for %s: %v", p.name, what, err)
	}
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}
