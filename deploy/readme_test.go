package deploy

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// readme returns the repository's README.md.
func readme(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// section returns the text of README's section headed title, up to the
// next heading of the same or a higher level.
func section(t *testing.T, doc, title string) string {
	t.Helper()
	re := regexp.MustCompile(`(?m)^(#+) ` + regexp.QuoteMeta(title) + `\n`)
	loc := re.FindStringSubmatchIndex(doc)
	if loc == nil {
		t.Fatalf("README.md has no section %q", title)
	}
	level := doc[loc[2]:loc[3]]
	rest := doc[loc[1]:]
	end := regexp.MustCompile(`(?m)^#{1,` + strconv.Itoa(len(level)) + `} `).FindStringIndex(rest)
	if end == nil {
		return rest
	}
	return rest[:end[0]]
}

// TestReadmeLinksRecipes checks that README.md links every file of
// deploy/ an operator installs, and that every link into deploy/ leads
// to a file that exists.
func TestReadmeLinksRecipes(t *testing.T) {
	t.Parallel()
	doc := readme(t)
	linked := map[string]bool{}
	for _, m := range regexp.MustCompile(`\]\((deploy/[^)#]+)\)`).FindAllStringSubmatch(doc, -1) {
		linked[m[1]] = true
		if _, err := os.Stat(filepath.Join("..", m[1])); err != nil {
			t.Errorf("README.md links %s: %v", m[1], err)
		}
	}
	files, err := filepath.Glob("*/*")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.yml") {
			continue // promtool's tests of alerts.yml, not deployed
		}
		if !linked["deploy/"+f] {
			t.Errorf("README.md does not link deploy/%s", f)
		}
	}
}

// settingKey matches a config key in backticks, such as
// `limits.per_ip` or `routes[].limits.per_ip`.
var settingKey = regexp.MustCompile("`((?:[a-z0-9_]+(?:\\[\\])?\\.)*[a-z0-9_]+(?:\\.\\*)?)`")

// TestThreatTableSettings checks that every config key the mitigation
// table of README.md names is a key of its configuration reference.
func TestThreatTableSettings(t *testing.T) {
	t.Parallel()
	doc := readme(t)
	reference := section(t, doc, "Configuration reference")
	table := section(t, doc, "Threats and the settings that answer them")
	rows := 0
	for _, line := range strings.Split(table, "\n") {
		cells := strings.Split(line, "|")
		if len(cells) < 4 || strings.HasPrefix(strings.TrimSpace(cells[1]), "---") ||
			strings.TrimSpace(cells[1]) == "mitigation" {
			continue
		}
		rows++
		if strings.HasPrefix(strings.TrimSpace(cells[2]), "not wsguard's") {
			continue // the proxies' own settings
		}
		for _, m := range settingKey.FindAllStringSubmatch(cells[2], -1) {
			key := m[1]
			if !strings.Contains(key, ".") && !strings.Contains(key, "_") {
				continue // a value, not a key
			}
			if prefix, ok := strings.CutSuffix(key, ".*"); ok {
				key = prefix + "." // a group: one key of it will do
			} else {
				key += "`"
			}
			if !strings.Contains(reference, "`"+key) {
				t.Errorf("the mitigation table names `%s`, which the configuration reference does not list",
					m[1])
			}
		}
	}
	if rows < 15 {
		t.Errorf("the mitigation table has %d rows", rows)
	}
}
