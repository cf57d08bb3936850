package admin_test

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"testing"
	"time"

	"github.com/wsguard/wsguard/admin"
	"github.com/wsguard/wsguard/config"
	"github.com/wsguard/wsguard/internal/gatewaytest"
	"github.com/wsguard/wsguard/internal/testsupport"
	"github.com/wsguard/wsguard/relay"
)

// pageState is what the status page shows, read from its ids and data
// attributes by readPage.
type pageState struct {
	Updates       int               `json:"updates"`
	Open          int               `json:"open"`
	Pending       int               `json:"pending"`
	Max           int               `json:"max"`
	FDsOpen       int               `json:"fdsOpen"`
	FDsLimit      uint64            `json:"fdsLimit"`
	FDsShare      float64           `json:"fdsShare"`
	BarWidth      string            `json:"barWidth"`
	Draining      string            `json:"draining"`
	Refusals      map[string]uint64 `json:"refusals"`
	RefusalsTotal uint64            `json:"refusalsTotal"`
	PerIPRate     string            `json:"perIPRate"`
	ChartPoints   int               `json:"chartPoints"`
	ChartLine     string            `json:"chartLine"`
	TopOpen       []relay.Count     `json:"topOpen"`
	TopRefused    []relay.Count     `json:"topRefused"`
	AuthHidden    bool              `json:"authHidden"`
	Error         string            `json:"error"`
}

const readPageJS = `(() => {
  const el = (id) => document.getElementById(id);
  const num = (id) => Number(el(id).dataset.value);
  const refusals = {};
  let perIPRate = "";
  for (const tr of document.querySelectorAll("#refusals tr")) {
    refusals[tr.dataset.reason] = Number(tr.querySelector("[data-total]").dataset.total);
    if (tr.dataset.reason === "per_ip") perIPRate = tr.querySelector("[data-rate]").dataset.rate;
  }
  const top = (id) => [...document.querySelectorAll("#" + id + " tr")]
    .map((tr) => ({ key: tr.dataset.key, count: Number(tr.dataset.count) }));
  return {
    updates: Number(document.body.dataset.updates),
    open: num("open"), pending: num("pending"), max: num("max"),
    fdsOpen: num("fds-open"), fdsLimit: num("fds-limit"),
    fdsShare: Number(el("fds-bar").dataset.share), barWidth: el("fds-bar").style.width,
    draining: el("draining").dataset.draining,
    refusals, refusalsTotal: num("refusals-total"), perIPRate,
    chartPoints: Number(el("chart").dataset.points), chartLine: el("chart-line").getAttribute("points"),
    topOpen: top("top-open-prefixes"), topRefused: top("top-refused-prefixes"),
    authHidden: el("auth").hidden, error: el("error").textContent,
  };
})()`

// TestStatusPageInBrowser loads the status page in headless Chromium
// while a flood runs, and checks that it asks for the admin token, then
// shows the numbers the API gives, and follows them as the flood grows
// and the gateway drains.
func TestStatusPageInBrowser(t *testing.T) {
	t.Parallel()
	const token = "browser-test-token"
	g := gatewaytest.Start(t, gatewaytest.Options{AdminToken: token, Config: func(c *config.Config, _ string) {
		c.Limits.PerIP = 1
		c.Timeouts.PingInterval = 0 // the held clients never read
	}})
	browser := testsupport.StartChromium(t)

	// The first wave: 127.0.0.2 to .25 hold one connection each and are
	// refused three times each.
	flood(t, g, 2, 25)
	page := browser.Open(t, g.AdminURL+"/")
	// The API wants the token, so the page asks for it.
	waitPage(t, page, "the token form", func(s pageState) bool { return !s.AuthHidden })
	if err := page.Eval(t.Context(), `(() => {
		document.getElementById("token").value = "`+token+`";
		document.getElementById("token-form").requestSubmit();
	})()`, nil); err != nil {
		t.Fatal(err)
	}

	// It then shows what the API says.
	api := status(t, g, token)
	first := waitPage(t, page, "the first wave's numbers", func(s pageState) bool {
		return s.AuthHidden && s.Updates >= 1 && s.Open == api.Stats.Open && maps.Equal(s.Refusals, api.Refusals)
	})
	if first.Open != 24 || api.Refusals["per_ip"] != 72 {
		t.Fatalf("first wave: page shows %d open and API %d per_ip refusals, want 24 and 72", first.Open, api.Refusals["per_ip"])
	}
	expectPageMatches(t, first, api)
	if s := sessionToken(t, page); s != token {
		t.Errorf("sessionStorage holds %q, want the token", s)
	}

	// The second wave, 127.0.0.26 to .50: the page follows by itself.
	flood(t, g, 26, 50)
	api = status(t, g, token)
	var before pageState // the last reading before the wave showed
	second := waitPage(t, page, "the second wave's numbers", func(s pageState) bool {
		if s.Open == 49 && s.Refusals["per_ip"] == 147 {
			return true
		}
		before = s
		return false
	})
	if second.Updates <= first.Updates || second.ChartPoints <= first.ChartPoints || second.ChartLine == first.ChartLine {
		t.Errorf("page did not update: %d updates and %d chart points, then %d and %d",
			first.Updates, first.ChartPoints, second.Updates, second.ChartPoints)
	}
	// The update that first saw the wave saw refusals arrive (unless the
	// test was too slow to read that update before the next).
	if second.Updates == before.Updates+1 && (second.PerIPRate == "" || second.PerIPRate == "0.0") {
		t.Errorf("per_ip refusal rate %q when the second wave arrived", second.PerIPRate)
	}
	expectPageMatches(t, second, api)

	// A drain shows, and the connections go.
	drained := make(chan error, 1)
	go func() {
		sctx, scancel := context.WithTimeout(context.Background(), time.Minute)
		defer scancel()
		drained <- g.Shutdown(sctx)
	}()
	waitPage(t, page, "the drain", func(s pageState) bool { return s.Draining == "true" && s.Open == 0 })
	if err := <-drained; err != nil {
		t.Fatalf("drain: %v", err)
	}
}

// flood holds one connection from each address 127.0.0.lo to .hi and
// has each refused three times more (per_ip is 1).
func flood(t *testing.T, g *gatewaytest.Gateway, lo, hi int) {
	t.Helper()
	for i := lo; i <= hi; i++ {
		from := gatewaytest.DialOptions{Local: fmt.Sprintf("127.0.0.%d", i)}
		gatewaytest.MustDial(t, g.Addr, "/", from)
		for range 3 {
			if status, body := gatewaytest.Refused(t, g.Addr, "/", from); status != http.StatusTooManyRequests {
				t.Fatalf("refusal from %s: %d %q, want 429", from.Local, status, body)
			}
		}
	}
	// Until the last refused handshake has unwound, the API's numbers
	// still move.
	g.WaitStats(t, "the wave held", func(st relay.Stats) bool { return st.Open == hi-1 && st.Pending == 0 })
}

func status(t *testing.T, g *gatewaytest.Gateway, token string) admin.Status {
	t.Helper()
	var st admin.Status
	gatewaytest.GetJSON(t, g.AdminURL+"/admin/api/status", token, &st)
	return st
}

// waitPage reads the page until ok accepts a reading, which it returns,
// failing the test after 60 s with the last reading.
func waitPage(t *testing.T, p *testsupport.Page, what string, ok func(pageState) bool) pageState {
	t.Helper()
	var s pageState
	gatewaytest.Poll(t, 60*time.Second, "the status page to show "+what, func() (bool, string) {
		s = pageState{}
		ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
		defer cancel()
		if err := p.Eval(ctx, readPageJS, &s); err != nil {
			return false, err.Error()
		}
		return ok(s), fmt.Sprintf("page shows %+v", s)
	})
	return s
}

// expectPageMatches checks the page's reading against an API answer
// taken while nothing changed.
func expectPageMatches(t *testing.T, s pageState, api admin.Status) {
	t.Helper()
	if s.Open != api.Stats.Open || s.Pending != api.Stats.Pending || s.Max != api.Stats.MaxConnections {
		t.Errorf("page open/pending/max %d/%d/%d, API %+v", s.Open, s.Pending, s.Max, api.Stats)
	}
	var total uint64
	for _, n := range api.Refusals {
		total += n
	}
	if !maps.Equal(s.Refusals, api.Refusals) || s.RefusalsTotal != total {
		t.Errorf("page refusals %v (total %d), API %v", s.Refusals, s.RefusalsTotal, api.Refusals)
	}
	if s.Draining != "false" {
		t.Errorf("page says draining %q", s.Draining)
	}
	if s.FDsLimit != api.FDs.Limit || s.FDsOpen <= 0 || uint64(s.FDsOpen) > s.FDsLimit {
		t.Errorf("page descriptors %d of %d, API %+v", s.FDsOpen, s.FDsLimit, api.FDs)
	}
	if want := float64(s.FDsOpen) / float64(s.FDsLimit); s.FDsShare < want-1e-4 || s.FDsShare > want+1e-4 {
		t.Errorf("descriptor bar at share %v, want %v", s.FDsShare, want)
	}
	if s.BarWidth == "" || s.BarWidth == "0%" {
		t.Errorf("descriptor bar width %q", s.BarWidth)
	}
	if fmt.Sprint(s.TopOpen) != fmt.Sprint(api.Top.OpenPrefixes) || fmt.Sprint(s.TopRefused) != fmt.Sprint(api.Top.RefusedPrefixes) {
		t.Errorf("page top open %v refused %v; API %v and %v", s.TopOpen, s.TopRefused,
			api.Top.OpenPrefixes, api.Top.RefusedPrefixes)
	}
	if len(s.TopRefused) == 0 || s.TopRefused[0].Count != 3 {
		t.Errorf("top refused prefixes %v, want flooding /32s refused 3 times", s.TopRefused)
	}
	if s.Error != "" {
		t.Errorf("page shows an error: %s", s.Error)
	}
}

func sessionToken(t *testing.T, p *testsupport.Page) string {
	t.Helper()
	var s string
	if err := p.Eval(t.Context(), `sessionStorage.getItem("wsguard.adminToken")`, &s); err != nil {
		t.Fatal(err)
	}
	return s
}
