// Package deploy holds no Go code: its tests check the files operators
// deploy next to wsguard: the Prometheus alert rules (with promtool, from
// Debian's prometheus package) and the Grafana dashboard (against the
// metrics of a running gateway) here, and the recipes (nginx, HAProxy,
// two instances on one Redis, the systemd unit, the sysctl note) in
// recipes_test.go, systemd_test.go and sysctl_test.go.
package deploy

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"go.yaml.in/yaml/v3"

	"github.com/wsguard/wsguard/admin"
	"github.com/wsguard/wsguard/internal/gatewaytest"
	"github.com/wsguard/wsguard/internal/testsupport"
	"github.com/wsguard/wsguard/relay"
)

// promtool runs promtool with args in dir and fails the test unless it
// succeeds.
func promtool(t *testing.T, dir string, args ...string) {
	t.Helper()
	bin := testsupport.LookPath(t, "promtool")
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

func TestAlertRules(t *testing.T) {
	t.Parallel()
	promtool(t, "prometheus", "check", "rules", "alerts.yml")
	promtool(t, "prometheus", "test", "rules", "alerts_test.yml")
}

// instanceLabel finds the instance of a test's input series.
var instanceLabel = regexp.MustCompile(`instance="([^"]+)"`)

// TestAlertRulesCovered checks that alerts_test.yml shows every alert of
// alerts.yml firing and, at another time or for another instance, not
// firing, and that every alert carries a summary, a description and a
// runbook line.
func TestAlertRulesCovered(t *testing.T) {
	t.Parallel()
	var rules struct {
		Groups []struct {
			Rules []struct {
				Alert       string
				Labels      map[string]string
				Annotations map[string]string
			}
		}
	}
	readYAMLAsJSON(t, "prometheus/alerts.yml", &rules)
	var tests struct {
		Tests []struct {
			AlertRuleTest []struct {
				Alertname string
				ExpAlerts []struct {
					ExpLabels map[string]string `json:"exp_labels"`
				} `json:"exp_alerts"`
			} `json:"alert_rule_test"`
			InputSeries []struct{ Series string } `json:"input_series"`
		}
	}
	readYAMLAsJSON(t, "prometheus/alerts_test.yml", &tests)

	fires := map[string]bool{}
	quiet := map[string]bool{} // an eval with no alert, or an instance left out
	for _, tc := range tests.Tests {
		instances := map[string]bool{}
		for _, s := range tc.InputSeries {
			if m := instanceLabel.FindStringSubmatch(s.Series); m != nil {
				instances[m[1]] = true
			}
		}
		for _, at := range tc.AlertRuleTest {
			firing := map[string]bool{}
			for _, a := range at.ExpAlerts {
				firing[a.ExpLabels["instance"]] = true
			}
			if len(firing) > 0 {
				fires[at.Alertname] = true
			}
			if len(firing) < len(instances) {
				quiet[at.Alertname] = true
			}
		}
	}
	n := 0
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				continue
			}
			n++
			if !fires[r.Alert] || !quiet[r.Alert] {
				t.Errorf("alerts_test.yml shows %s firing: %v, not firing: %v; want both", r.Alert, fires[r.Alert], quiet[r.Alert])
			}
			for _, a := range []string{"summary", "description", "runbook"} {
				if strings.TrimSpace(r.Annotations[a]) == "" {
					t.Errorf("alert %s has no %s", r.Alert, a)
				}
			}
			if s := r.Labels["severity"]; s != "warning" && s != "critical" {
				t.Errorf("alert %s has severity %q", r.Alert, s)
			}
		}
	}
	if n < 10 {
		t.Errorf("alerts.yml has %d alerts", n)
	}
}

// readYAMLAsJSON decodes a YAML file into out by way of JSON, so that
// out's json tags name the YAML keys.
func readYAMLAsJSON(t *testing.T, path string, out any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var v any
	if err := yaml.Unmarshal(b, &v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	j, err := json.Marshal(v)
	if err == nil {
		err = json.Unmarshal(j, out)
	}
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// panel is the part of a Grafana panel the checks read.
type panel struct {
	ID      int    `json:"id"`
	Type    string `json:"type"`
	Title   string `json:"title"`
	GridPos struct {
		H, W, X, Y int
	} `json:"gridPos"`
	Datasource *struct {
		UID string `json:"uid"`
	} `json:"datasource"`
	Targets []struct {
		RefID string `json:"refId"`
		Expr  string `json:"expr"`
	} `json:"targets"`
	Panels []panel `json:"panels"` // a collapsed row's panels
}

type dashboard struct {
	Title      string  `json:"title"`
	UID        string  `json:"uid"`
	Panels     []panel `json:"panels"`
	Templating struct {
		List []struct {
			Name       string `json:"name"`
			Definition string `json:"definition"`
		} `json:"list"`
	} `json:"templating"`
}

// metricName finds the names of Prometheus metrics in a query.
var metricName = regexp.MustCompile(`\b(?:wsguard|process|go)_[a-zA-Z0-9_]+\b`)

// absentWithoutRedis are the store metrics, which the gateway registers
// only when it runs with the Redis store; the memory store of this test
// has none. They are allowed to be missing from the scrape, and only
// they.
var absentWithoutRedis = []string{
	"wsguard_store_up",
	"wsguard_store_errors_total",
	"wsguard_store_latency_seconds_bucket",
	"wsguard_store_failure_mode",
}

func TestDashboard(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("grafana/wsguard.json")
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("grafana/wsguard.json is not valid JSON: %v", err)
	}
	if d.Title == "" || d.UID == "" || len(d.Panels) == 0 {
		t.Fatalf("dashboard without title, uid or panels: %q %q %d", d.Title, d.UID, len(d.Panels))
	}

	// Every panel but a row has queries; every query names a metric.
	var exprs []string
	ids := map[int]bool{}
	var walk func(ps []panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			if ids[p.ID] {
				t.Errorf("panel id %d used twice", p.ID)
			}
			ids[p.ID] = true
			if p.GridPos.W <= 0 || p.GridPos.X+p.GridPos.W > 24 || p.GridPos.H <= 0 {
				t.Errorf("panel %q: gridPos %+v outside the 24-column grid", p.Title, p.GridPos)
			}
			if p.Type == "row" {
				walk(p.Panels)
				continue
			}
			if len(p.Targets) == 0 {
				t.Errorf("panel %q has no query", p.Title)
			}
			if p.Datasource == nil || p.Datasource.UID != "${datasource}" {
				t.Errorf("panel %q does not use the dashboard's data source variable", p.Title)
			}
			refs := map[string]bool{}
			for _, tg := range p.Targets {
				if strings.TrimSpace(tg.Expr) == "" || refs[tg.RefID] {
					t.Errorf("panel %q: empty query or refId %q used twice", p.Title, tg.RefID)
				}
				refs[tg.RefID] = true
				if !metricName.MatchString(tg.Expr) {
					t.Errorf("panel %q: query %q names no metric", p.Title, tg.Expr)
				}
				exprs = append(exprs, tg.Expr)
			}
		}
	}
	walk(d.Panels)
	for _, v := range d.Templating.List {
		if v.Definition != "" {
			exprs = append(exprs, v.Definition)
		}
	}

	checkQueriesParse(t, exprs)
	// The alerts' metrics must exist as much as the panels'.
	checkMetricsExist(t, append(exprs, alertExprs(t)...))
}

// alertExprs returns the expressions of alerts.yml.
func alertExprs(t *testing.T) []string {
	t.Helper()
	var rules struct {
		Groups []struct {
			Rules []struct{ Expr string }
		}
	}
	readYAMLAsJSON(t, "prometheus/alerts.yml", &rules)
	var exprs []string
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			exprs = append(exprs, r.Expr)
		}
	}
	return exprs
}

// checkQueriesParse has promtool parse every panel query, as a recording
// rule with Grafana's variables filled in.
func checkQueriesParse(t *testing.T, exprs []string) {
	t.Helper()
	var rules strings.Builder
	rules.WriteString("groups:\n  - name: dashboard\n    rules:\n")
	n := 0
	for _, e := range exprs {
		if strings.HasPrefix(e, "label_values(") {
			continue // Grafana's, not PromQL
		}
		e = strings.NewReplacer("$__rate_interval", "5m", "$instance", ".*").Replace(e)
		q, _ := json.Marshal(e)
		fmt.Fprintf(&rules, "      - record: dashboard:query%d\n        expr: %s\n", n, q)
		n++
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "queries.yml"), []byte(rules.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	promtool(t, dir, "check", "rules", "queries.yml")
}

// checkMetricsExist runs a gateway, gives each metric family a series
// with a little of every kind of traffic, and checks that every metric
// the queries name is in its scrape.
func checkMetricsExist(t *testing.T, exprs []string) {
	t.Helper()
	g := gatewaytest.Start(t, gatewaytest.Options{Auth: true})
	scrape := traffic(t, g)
	names := scrape.Names()
	var used []string
	for _, e := range exprs {
		used = append(used, metricName.FindAllString(e, -1)...)
	}
	slices.Sort(used)
	used = slices.Compact(used)
	for _, name := range used {
		if names[name] {
			continue
		}
		if slices.Contains(absentWithoutRedis, name) {
			t.Logf("%s is not in the scrape: registered with the Redis store only", name)
			continue
		}
		t.Errorf("the dashboard or an alert queries %s, which a running wsguard does not export", name)
	}
	if len(used) < 20 {
		t.Errorf("the dashboard uses only %d metrics: %v", len(used), used)
	}
}

// traffic makes the gateway count something in each metric family, and
// returns a scrape taken once it has.
func traffic(t *testing.T, g *gatewaytest.Gateway) gatewaytest.Scrape {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()

	// Held, authenticated and anonymous, and echoing: open, handshakes,
	// frames, bytes, latencies.
	anon := gatewaytest.MustDial(t, g.Addr, "/", gatewaytest.DialOptions{})
	gatewaytest.MustDial(t, g.Addr, "/", gatewaytest.DialOptions{
		Header: http.Header{"Authorization": {"Bearer " + g.Token(t, "alice")}}})
	if err := anon.Write(ctx, websocket.MessageText, []byte("hello")); err != nil {
		t.Fatal(err)
	}
	if _, _, err := anon.Read(ctx); err != nil {
		t.Fatal(err)
	}
	// A bad token, an unreachable upstream, a violation, a kick.
	gatewaytest.Refused(t, g.Addr, "/", gatewaytest.DialOptions{
		Header: http.Header{"Authorization": {"Bearer nonsense"}}})
	gatewaytest.Refused(t, g.Addr, "/down", gatewaytest.DialOptions{})
	raw := gatewaytest.DialRaw(t, g.Addr, "127.0.0.3", "/")
	if err := raw.WriteFrame(0x80|0x40|0x2, []byte("x")); err != nil {
		t.Fatal(err)
	}
	if code, err := raw.CloseCode(20 * time.Second); code != 1002 {
		t.Fatalf("violation: close %d, %v", code, err)
	}
	kicked := gatewaytest.MustDial(t, g.Addr, "/", gatewaytest.DialOptions{Local: "127.0.0.4"})
	status, body := gatewaytest.Do(t, http.MethodPost, g.AdminURL+"/admin/api/kick", "",
		admin.KickRequest{Prefix: "127.0.0.4"})
	if status != http.StatusOK {
		t.Fatalf("kick: %d %s", status, body)
	}
	if code, err := gatewaytest.CloseCode(ctx, kicked); code != 1008 {
		t.Fatalf("kicked: close %d, %v", code, err)
	}
	g.WaitStats(t, "two left open", func(st relay.Stats) bool { return st.Open == 2 })

	var s gatewaytest.Scrape
	gatewaytest.Poll(t, 20*time.Second, "every family counted", func() (bool, string) {
		s = gatewaytest.ScrapeMetrics(t, g.AdminURL+"/metrics")
		return s.Sum("wsguard_closes_total") >= 2 && s.Sum("wsguard_evictions_total") >= 1,
			fmt.Sprintf("closes %v, evictions %v", s.Sum("wsguard_closes_total"), s.Sum("wsguard_evictions_total"))
	})
	return s
}
