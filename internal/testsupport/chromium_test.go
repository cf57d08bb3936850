package testsupport

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestDumpDOMRunsScripts(t *testing.T) {
	t.Parallel()
	Chromium(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		io.WriteString(w, `<!doctype html><title>before</title>`+
			`<script>document.title = "after " + (6 * 7);</script>`)
	}))
	t.Cleanup(srv.Close)

	dom, err := DumpDOM(t, srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(dom, "<title>after 42</title>") {
		t.Fatalf("the script's title is not in the DOM:\n%s", dom)
	}
}
