package config

import (
	"errors"
	"regexp"
	"strings"
	"testing"
)

// fuzzRoundTrip checks that a value parse accepts prints back to itself.
func fuzzRoundTrip[T interface {
	comparable
	String() string
}](t *testing.T, parse func(string) (T, error), s string) {
	v, err := parse(s)
	if err != nil {
		return
	}
	again, err := parse(v.String())
	if err != nil {
		t.Fatalf("%q parsed to %v, whose String() does not parse: %v", s, v, err)
	}
	if again != v {
		t.Fatalf("%q parsed to %v, which prints as %q and parses back to %v",
			s, v, v.String(), again)
	}
}

func FuzzParseDuration(f *testing.F) {
	for _, s := range []string{"30s", "5m", "1h30m", "0", "1.5h", "-1s", "2562047h47m16.854775807s"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) { fuzzRoundTrip(t, ParseDuration, s) })
}

func FuzzParseSize(f *testing.F) {
	for _, s := range []string{
		"512", "512B", "64KiB", "1MiB", "2GiB", "1KB", "1.5KiB", "0.5B", "8589934591GiB",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) { fuzzRoundTrip(t, ParseSize, s) })
}

func FuzzParseRate(f *testing.F) {
	for _, s := range []string{"20/s", "100/m", "5/h", "0.5/s", "0", "1e-300/h", "-1/s"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) { fuzzRoundTrip(t, ParseRate, s) })
}

func FuzzParsePercent(f *testing.F) {
	for _, s := range []string{"10%", "0", "12.5%", "100%", "0.1%", "33.333333333333336%"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) { fuzzRoundTrip(t, ParsePercent, s) })
}

// errorLine is the shape of every line of a Parse error.
var errorLine = regexp.MustCompile(`^[^:]*:\d+: `)

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"", overlayFile, "listen: [a,\n", "a: *b\n", "x: &a\n  y: *a\n",
		"routes:\n  - &r {path: /, upstream: http://x}\n  - *r\n",
		"timeouts: {idle: 5m, idle: 1m}\n", "<<: {}\n", "? [a]\n: 1\n",
		"limits:\n  per_ip: \"\xff\"\n", "---\n---\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse("fuzz.yaml", data)
		if err == nil {
			checkValidateShape(t, c)
			return
		}
		var list *ErrorList
		if !errors.As(err, &list) || len(list.Errors) == 0 {
			t.Fatalf("error %v (%T) is not a non-empty *ErrorList", err, err)
		}
		for _, line := range strings.Split(err.Error(), "\n") {
			if !errorLine.MatchString(line) {
				t.Fatalf("error line %q does not start with file:line:", line)
			}
		}
	})
}

// checkValidateShape checks that Validate on a parsed config does not
// panic and that each of its errors is one line naming the file.
func checkValidateShape(t *testing.T, c Config) {
	t.Helper()
	err := c.Validate()
	if err == nil {
		return
	}
	for _, line := range strings.Split(err.Error(), "\n") {
		if !strings.HasPrefix(line, "fuzz.yaml") {
			t.Fatalf("validation error line %q does not name the file", line)
		}
	}
}
