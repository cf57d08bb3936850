// Package tornado holds no Go code: its tests run real WebSocket clients
// through wsguard to the Tornado example (app.py --deflate) and check
// what each client sees: the subprotocol the backend selected, the
// permessage-deflate extension, compressed messages that come back
// whole, and, in a browser, the token sent the way a browser must and
// the close code of a drain.
package tornado

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wsguard/wsguard/config"
	"github.com/wsguard/wsguard/internal/gatewaytest"
	"github.com/wsguard/wsguard/internal/testsupport"
	"github.com/wsguard/wsguard/relay"
)

// bigSize is the length of the compressible message each client sends.
// Compressed it is a few hundred bytes, so the bytes wsguard reads from
// each side show whether permessage-deflate was really in use.
const bigSize = 64 << 10

// compressedCeiling is the most bytes a session with the big message
// may carry in each direction when deflate is on; without deflate it
// carries more than bigSize.
const compressedCeiling = bigSize / 8

// spec is what a client script is told to do (realclient.py and
// nodeclient/client.js read the same JSON).
type spec struct {
	URL       string            `json:"url"`
	Protocols []string          `json:"protocols"`
	Headers   map[string]string `json:"headers"`
	Messages  []string          `json:"messages"`
	Deflate   bool              `json:"deflate"`
}

// report is what a client script prints.
type report struct {
	Subprotocol string `json:"subprotocol"`
	Extensions  string `json:"extensions"`
	Echoed      int    `json:"echoed"`
	CloseCode   int    `json:"close_code"`
	Error       string `json:"error"`
}

// chain is wsguard, with JWT auth required, in front of app.py --deflate
// on the route /ws.
type chain struct {
	g        *gatewaytest.Gateway
	tornado  *testsupport.Process
	sessions int // sessions run so far
}

func startChain(t *testing.T) *chain {
	t.Helper()
	c := &chain{tornado: testsupport.StartTornado(t, "--deflate")}
	c.g = gatewaytest.Start(t, gatewaytest.Options{
		Auth: true,
		// The admin API's drain; the API already calls it on a goroutine
		// of its own.
		Drain: func() { c.g.Shutdown(context.Background()) },
		Config: func(cfg *config.Config, _ string) {
			cfg.Auth.Required = true
			cfg.Auth.TokenSources = []string{"header", "subprotocol"}
			cfg.Routes = append(cfg.Routes, cfg.NewRoute("/ws", c.tornado.HTTPURL("")))
		},
	})
	return c
}

// messages are what every client sends: a short one and the big one.
func messages() []string {
	return []string{"hello through wsguard", strings.Repeat("wsguard ", bigSize/8)}
}

// session runs one client against the chain and checks its report: the
// backend's choice of subprotocol (app.py selects the first offered),
// every message echoed, a normal close, and permessage-deflate agreed
// and in use (or, with deflate off, neither).
func (c *chain) session(t *testing.T, run func(spec) (report, error), deflate bool) {
	t.Helper()
	before := c.bytes(t)
	sp := spec{
		URL:       "ws://" + c.g.Addr + "/ws",
		Protocols: []string{"chat.v2", "chat.v1"},
		Headers:   map[string]string{"Authorization": "Bearer " + c.g.Token(t, "alice")},
		Messages:  messages(),
		Deflate:   deflate,
	}
	r, err := run(sp)
	if err != nil || r.Error != "" {
		t.Fatalf("client: %v; report %+v", err, r)
	}
	if r.Subprotocol != "chat.v2" || r.Echoed != len(sp.Messages) || r.CloseCode != 1000 {
		t.Fatalf("report %+v, want subprotocol chat.v2, %d echoed, close 1000", r, len(sp.Messages))
	}
	// The choice was Tornado's, not wsguard's.
	c.sessions++
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	const opened = "ws open path=/ws peer=127.0.0.1 subprotocol=chat.v2"
	if err := c.tornado.WaitOutput(ctx, opened, c.sessions); err != nil {
		t.Fatal(err)
	}
	c.g.WaitStats(t, "the session to end", func(st relay.Stats) bool { return st.Open == 0 })
	checkDeflate(t, r.Extensions, c.bytes(t), before, deflate)
}

// checkDeflate checks the extension a client saw and the bytes wsguard
// read from each side during its session.
func checkDeflate(t *testing.T, ext string, after, before [2]float64, deflate bool) {
	t.Helper()
	client, upstream := after[0]-before[0], after[1]-before[1]
	t.Logf("Sec-WebSocket-Extensions %q; wsguard read %.0f bytes from the client, %.0f from Tornado",
		ext, client, upstream)
	if got := strings.HasPrefix(ext, "permessage-deflate"); got != deflate {
		t.Fatalf("Sec-WebSocket-Extensions %q, want permessage-deflate: %v", ext, deflate)
	}
	if deflate && (client > compressedCeiling || upstream > compressedCeiling) {
		t.Fatalf("%.0f and %.0f bytes for a %d-byte message each way: not compressed",
			client, upstream, bigSize)
	}
	if !deflate && (client < bigSize || upstream < bigSize) {
		t.Fatalf("%.0f and %.0f bytes for a %d-byte message each way without deflate",
			client, upstream, bigSize)
	}
}

// bytes returns wsguard_bytes_total from the client and from upstream.
func (c *chain) bytes(t *testing.T) [2]float64 {
	t.Helper()
	s := gatewaytest.ScrapeMetrics(t, c.g.AdminURL+"/metrics")
	return [2]float64{
		s.Sum("wsguard_bytes_total", `direction="client"`),
		s.Sum("wsguard_bytes_total", `direction="upstream"`),
	}
}

// python runs realclient.py with the library lib.
func python(t *testing.T, lib string) func(spec) (report, error) {
	return func(sp spec) (report, error) {
		b, err := json.Marshal(sp)
		if err != nil {
			t.Fatal(err)
		}
		out, runErr := testsupport.RunPython(t, testsupport.RealClientScript, lib, string(b))
		return decodeReport(out, runErr)
	}
}

// decodeReport reads the last line a client printed.
func decodeReport(out string, runErr error) (report, error) {
	var r report
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &r); err != nil {
		return r, fmt.Errorf("reading the client's report %q: %w (run: %v)", out, err, runErr)
	}
	return r, runErr
}

func TestPythonWebsockets(t *testing.T) {
	t.Parallel()
	c := startChain(t)
	c.session(t, python(t, "websockets"), true)
	// The control: the same client without deflate carries every byte,
	// so the ceiling above does tell compression apart.
	c.session(t, python(t, "websockets"), false)
}

func TestTornadoClient(t *testing.T) {
	t.Parallel()
	c := startChain(t)
	c.session(t, python(t, "tornado"), true)
}

// nodeClientDir holds client.js, package.json and the node_modules that
// `npm ci` installs there.
func nodeClientDir(t *testing.T) string {
	return filepath.Join(testsupport.RepoRoot(t), "internal", "testsupport", "nodeclient")
}

func TestNodeWS(t *testing.T) {
	t.Parallel()
	node := testsupport.LookPath(t, "node")
	dir := nodeClientDir(t)
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "ws", "package.json")); err != nil {
		testsupport.Require(t, "node's ws package (npm ci in internal/testsupport/nodeclient)", err.Error())
	}
	c := startChain(t)
	c.session(t, func(sp spec) (report, error) {
		b, err := json.Marshal(sp)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, node, "client.js", string(b))
		cmd.Dir = dir
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			err = fmt.Errorf("node client.js: %w; stderr: %s", err, stderr.String())
		}
		return decodeReport(string(out), err)
	}, true)
}
