package testsupport

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestBrowserEval(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		io.WriteString(w, `<!doctype html><title>t</title><p id="n">0</p>`+
			`<script>setInterval(() => { const p = document.getElementById("n"); p.textContent = Number(p.textContent) + 1 }, 50)</script>`)
	}))
	t.Cleanup(srv.Close)

	page := StartChromium(t).Open(t, srv.URL)
	// The page runs on its own: the counter keeps growing.
	seen := map[int]bool{}
	deadline := time.Now().Add(ChromiumTimeout)
	for len(seen) < 3 {
		var n int
		if err := page.Eval(t.Context(), `Number(document.getElementById("n")?.textContent ?? -1)`, &n); err != nil {
			t.Fatal(err)
		}
		if n > 0 {
			seen[n] = true
		}
		if time.Now().After(deadline) {
			t.Fatalf("the page's counter did not move: saw %v", seen)
		}
		time.Sleep(20 * time.Millisecond) // polling a state, not a guess at timing
	}

	// Promises are awaited; exceptions are errors.
	var s string
	if err := page.Eval(t.Context(), `new Promise((ok) => setTimeout(() => ok("done"), 10))`, &s); err != nil || s != "done" {
		t.Fatalf("awaited promise: %q, %v", s, err)
	}
	err := page.Eval(t.Context(), `(() => { throw new Error("boom") })()`, nil)
	if err == nil || !strings.Contains(err.Error(), "boom") {
		t.Fatalf("a thrown error came back as %v", err)
	}
}
