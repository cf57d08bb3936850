package testsupport

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// Browser is a headless Chromium that a test drives over the Chrome
// DevTools Protocol, for pages that must be watched while they run (a
// page that updates itself), where one [DumpDOM] snapshot is not enough.
// It listens for DevTools on a loopback port only. Start it with
// [StartChromium]; it is stopped when the test ends.
type Browser struct {
	devtools string  // http://127.0.0.1:PORT, the DevTools endpoint
	out      *output // the browser's stderr
}

// devtoolsLine is how Chromium announces its DevTools endpoint on stderr.
var devtoolsLine = regexp.MustCompile(`DevTools listening on ws://(127\.0\.0\.1:\d+)/`)

// StartChromium starts headless Chromium (see [Chromium] for which one,
// and [DumpDOM] for its flags) with DevTools on a free loopback port,
// and returns once the endpoint is announced.
func StartChromium(t testing.TB) *Browser {
	t.Helper()
	bin := Chromium(t)
	// t.Context ends just before the cleanups run, which kills the
	// browser's process group.
	cmd := chromiumCommand(t.Context(), t, bin,
		"--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0", "about:blank")
	b := &Browser{out: newOutput()}
	cmd.Stdout, cmd.Stderr = b.out, b.out
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting chromium: %v", err)
	}
	exited := make(chan struct{})
	go func() {
		cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		killGroup(cmd.Process.Pid)
		<-exited
		if t.Failed() {
			s, _ := b.out.snapshot()
			t.Logf("chromium's output ends:\n%s", lastLines(s, 20))
		}
	})

	deadline := time.NewTimer(ChromiumTimeout)
	defer deadline.Stop()
	for {
		s, changed := b.out.snapshot()
		if m := devtoolsLine.FindStringSubmatch(s); m != nil {
			b.devtools = "http://" + m[1]
			return b
		}
		select {
		case <-changed:
		case <-exited:
			t.Fatalf("chromium exited before announcing DevTools; output ends:\n%s", lastLines(s, 15))
		case <-deadline.C:
			t.Fatalf("chromium did not announce DevTools within %v; output ends:\n%s",
				ChromiumTimeout, lastLines(s, 15))
		}
	}
}

// Page is one browser tab under the test's control. Its methods may be
// called from one goroutine at a time.
type Page struct {
	c    *websocket.Conn
	mu   sync.Mutex // guards next
	next int        // id of the next command
}

// Open opens a new tab, navigates it to url and returns it without
// waiting for the page to load; poll [Page.Eval] for what the test
// needs. The tab closes when the test ends.
func (b *Browser) Open(t testing.TB, url string) *Page {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), ChromiumTimeout)
	defer cancel()

	// PUT /json/new makes a blank tab and names its DevTools socket.
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, b.devtools+"/json/new", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("opening a tab: %v", err)
	}
	var target struct {
		WebSocketDebuggerURL string `json:"webSocketDebuggerUrl"`
	}
	err = json.NewDecoder(resp.Body).Decode(&target)
	resp.Body.Close()
	if err != nil || target.WebSocketDebuggerURL == "" {
		t.Fatalf("opening a tab: %s: %v", resp.Status, err)
	}
	c, _, err := websocket.Dial(ctx, target.WebSocketDebuggerURL, nil)
	if err != nil {
		t.Fatalf("connecting to the tab's DevTools: %v", err)
	}
	c.SetReadLimit(64 << 20)
	p := &Page{c: c}
	t.Cleanup(func() { c.CloseNow() })

	if err := p.call(ctx, "Page.navigate", map[string]any{"url": url}, nil); err != nil {
		t.Fatalf("navigating to %s: %v", url, err)
	}
	return p
}

// Eval evaluates the JavaScript expression expr in the page, waits for
// it if it is a promise, and decodes its value (as JSON) into out, which
// may be nil. A thrown exception is returned as an error.
func (p *Page) Eval(ctx context.Context, expr string, out any) error {
	var res struct {
		Result struct {
			Value json.RawMessage `json:"value"`
		} `json:"result"`
		ExceptionDetails *struct {
			Text      string `json:"text"`
			Exception struct {
				Description string `json:"description"`
			} `json:"exception"`
		} `json:"exceptionDetails"`
	}
	err := p.call(ctx, "Runtime.evaluate", map[string]any{
		"expression": expr, "returnByValue": true, "awaitPromise": true,
	}, &res)
	if err != nil {
		return err
	}
	if e := res.ExceptionDetails; e != nil {
		return fmt.Errorf("evaluating %q: %s %s", expr, e.Text, e.Exception.Description)
	}
	if out == nil || len(res.Result.Value) == 0 {
		return nil
	}
	return json.Unmarshal(res.Result.Value, out)
}

// call sends one DevTools command and decodes its result into out (may
// be nil), skipping the events that arrive meanwhile.
func (p *Page) call(ctx context.Context, method string, params any, out any) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.next++
	id := p.next
	msg, err := json.Marshal(map[string]any{"id": id, "method": method, "params": params})
	if err != nil {
		return err
	}
	if err := p.c.Write(ctx, websocket.MessageText, msg); err != nil {
		return fmt.Errorf("sending %s: %w", method, err)
	}
	for {
		_, b, err := p.c.Read(ctx)
		if err != nil {
			return fmt.Errorf("waiting for the answer to %s: %w", method, err)
		}
		var reply struct {
			ID     int             `json:"id"`
			Result json.RawMessage `json:"result"`
			Error  *struct {
				Message string `json:"message"`
			} `json:"error"`
		}
		if err := json.Unmarshal(b, &reply); err != nil {
			return fmt.Errorf("reading DevTools message %.200q: %w", b, err)
		}
		if reply.ID != id {
			continue // an event, or the answer to an abandoned call
		}
		if reply.Error != nil {
			return fmt.Errorf("%s: %s", method, reply.Error.Message)
		}
		if out == nil {
			return nil
		}
		if len(reply.Result) == 0 {
			return errors.New(method + ": empty result")
		}
		return json.Unmarshal(reply.Result, out)
	}
}
