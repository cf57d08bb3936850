package tornado

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/wsguard/wsguard/internal/gatewaytest"
	"github.com/wsguard/wsguard/internal/testsupport"
	"github.com/wsguard/wsguard/relay"
)

// browserPage is the script of the test page. It opens a WebSocket
// offering the token the way a browser must (Sec-WebSocket-Protocol:
// wsguard.bearer, bearer.<JWT>) beside its own protocol, sends each
// message and checks its echo. window.session resolves to the report
// of realclient.py's shape once every echo is in (or on failure);
// window.ended resolves to the close event's code, reason and
// wasClean.
const browserPage = `<!doctype html>
<html><head><meta charset="utf-8"><title>wsguard client</title></head><body>
<script>
(function (url, protocols, messages) {
	var report = {subprotocol: "", extensions: "", echoed: 0, close_code: 0, error: ""};
	var settle, ended;
	window.session = new Promise(function (r) { settle = r; });
	window.ended = new Promise(function (r) { ended = r; });
	var ws = new WebSocket(url, protocols);
	ws.onopen = function () {
		report.subprotocol = ws.protocol;
		report.extensions = ws.extensions;
		ws.send(messages[0]);
	};
	ws.onmessage = function (ev) {
		if (ev.data !== messages[report.echoed]) {
			report.error = "echo " + report.echoed + " differs";
			settle(report);
			return;
		}
		report.echoed++;
		if (report.echoed < messages.length) {
			ws.send(messages[report.echoed]);
		} else {
			settle(report);
		}
	};
	ws.onerror = function () { report.error = "error event"; };
	ws.onclose = function (ev) {
		report.close_code = ev.code;
		if (report.echoed < messages.length && !report.error) {
			report.error = "closed with " + ev.code;
		}
		settle(report);
		ended({code: ev.code, reason: ev.reason, wasClean: ev.wasClean});
	};
}).apply(null, ARGS);
</script>
</body></html>
`

// servePage serves the page, with its arguments, at / of a loopback
// server.
func servePage(t *testing.T, wsURL string, protocols, messages []string) string {
	t.Helper()
	args, err := json.Marshal([]any{wsURL, protocols, messages})
	if err != nil {
		t.Fatal(err)
	}
	page := strings.Replace(browserPage, "ARGS", string(args), 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		io.WriteString(w, page)
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/"
}

func TestChromium(t *testing.T) {
	t.Parallel()
	testsupport.Chromium(t) // skip or fail before starting anything
	c := startChain(t)
	before := c.bytes(t)
	protocols := []string{"wsguard.bearer", "bearer." + c.g.Token(t, "alice"), "chat.v1"}
	url := servePage(t, "ws://"+c.g.Addr+"/ws", protocols, messages())

	browser := testsupport.StartChromium(t)
	page := browser.Open(t, url)
	ctx, cancel := context.WithTimeout(t.Context(), testsupport.ChromiumTimeout)
	defer cancel()
	// Open returns before the page has loaded: wait for its script.
	testsupport.Poll(t, testsupport.ChromiumTimeout, "the page's script to start", func() (bool, string) {
		var kind string
		err := page.Eval(ctx, "typeof window.session", &kind)
		return err == nil && kind == "object", kind
	})

	// wsguard removes the token from what it forwards, so Tornado sees
	// only chat.v1 and selects it; the browser gets that answer.
	var r report
	if err := page.Eval(ctx, "window.session", &r); err != nil {
		t.Fatal(err)
	}
	if r.Error != "" || r.Subprotocol != "chat.v1" || r.Echoed != len(messages()) {
		t.Fatalf("page report %+v, want subprotocol chat.v1 and %d echoes", r, len(messages()))
	}
	if err := c.tornado.WaitOutput(ctx, "subprotocol=chat.v1", 1); err != nil {
		t.Fatal(err)
	}
	c.g.WaitStats(t, "the page's connection", func(st relay.Stats) bool { return st.Open == 1 })
	checkDeflate(t, r.Extensions, c.bytes(t), before, true)

	// A drain through the admin API: the page sees 1001, and wsguard
	// tells Tornado too.
	status, body := gatewaytest.Do(t, http.MethodPost, c.g.AdminURL+"/admin/api/drain", "", nil)
	if status != http.StatusAccepted {
		t.Fatalf("drain: %d %s", status, body)
	}
	var closed struct {
		Code     int
		Reason   string
		WasClean bool
	}
	if err := page.Eval(ctx, "window.ended", &closed); err != nil {
		t.Fatal(err)
	}
	t.Logf("the page saw close %+v", closed)
	if closed.Code != 1001 || !closed.WasClean {
		t.Fatalf("the page saw close %+v, want a clean 1001", closed)
	}
	if err := c.tornado.WaitOutput(ctx, "ws close path=/ws code=1001", 1); err != nil {
		t.Fatal(err)
	}
}
