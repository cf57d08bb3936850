package gatewaytest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

var client = &http.Client{Timeout: 20 * time.Second}

// Do sends an admin API request with the bearer token (none when "") and
// a body (none when nil; a []byte is sent as it is, anything else as
// JSON), and returns the status and the body.
func Do(t testing.TB, method, url, token string, body any) (int, []byte) {
	t.Helper()
	var rd io.Reader
	if raw, ok := body.([]byte); ok {
		rd = bytes.NewReader(raw)
	} else if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading the body: %v", method, url, err)
	}
	return resp.StatusCode, b
}

// GetJSON decodes the body of a GET that must answer 200 into out.
func GetJSON(t testing.TB, url, token string, out any) {
	t.Helper()
	status, b := Do(t, http.MethodGet, url, token, nil)
	if status != http.StatusOK {
		t.Fatalf("GET %s: %d %s", url, status, b)
	}
	if err := json.Unmarshal(b, out); err != nil {
		t.Fatalf("GET %s: %v in %s", url, err, b)
	}
}

// Scrape is one reading of a /metrics page: each sample's value by its
// series as the text format writes it, such as
// `wsguard_handshakes_total{outcome="refused",reason="per_ip"}` (labels
// in name order) or `wsguard_handshakes_pending`.
type Scrape map[string]float64

// ScrapeMetrics reads url (a /metrics page in the text format).
func ScrapeMetrics(t testing.TB, url string) Scrape {
	t.Helper()
	status, b := Do(t, http.MethodGet, url, "", nil)
	if status != http.StatusOK {
		t.Fatalf("GET %s: %d %s", url, status, b)
	}
	s, err := ParseScrape(b)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return s
}

// ParseScrape reads the Prometheus text format.
func ParseScrape(b []byte) (Scrape, error) {
	s := make(Scrape)
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		// The series ends at the last '}' if it has labels, else at the
		// first space; the value follows.
		end := strings.LastIndexByte(line, '}') + 1
		if end == 0 {
			end = strings.IndexByte(line, ' ')
		}
		if end <= 0 || end >= len(line) {
			return nil, fmt.Errorf("malformed sample line %q", line)
		}
		f := strings.Fields(line[end:])
		if len(f) == 0 {
			return nil, fmt.Errorf("sample line without a value %q", line)
		}
		v, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			return nil, fmt.Errorf("sample line %q: %w", line, err)
		}
		s[line[:end]] = v
	}
	return s, sc.Err()
}

// Names returns the metric names that have at least one sample; a
// histogram shows as its _bucket, _sum and _count series.
func (s Scrape) Names() map[string]bool {
	names := make(map[string]bool)
	for series := range s {
		name, _, _ := strings.Cut(series, "{")
		names[name] = true
	}
	return names
}

// Sum adds the values of every series of metric name whose labels
// include each of the given label pairs (such as `reason="per_ip"`).
func (s Scrape) Sum(name string, labels ...string) float64 {
	var total float64
	for series, v := range s {
		n, rest, _ := strings.Cut(series, "{")
		if n != name {
			continue
		}
		pairs := strings.Split(strings.TrimSuffix(rest, "}"), ",")
		if hasAll(pairs, labels) {
			total += v
		}
	}
	return total
}

func hasAll(pairs, want []string) bool {
	for _, w := range want {
		found := false
		for _, p := range pairs {
			if p == w {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}
