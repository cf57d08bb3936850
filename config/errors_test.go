package config

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestParseErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   string
		want []string // every error, in order
	}{
		{
			name: "unknown key",
			in:   "timeouts:\n  idel: 3s\n",
			want: []string{`f.yaml:2: timeouts.idel: unknown key (did you mean "idle"?)`},
		},
		{
			name: "unknown top-level key",
			in:   "listen: :80\nbackend: x\n",
			want: []string{`f.yaml:2: backend: unknown key`},
		},
		{
			name: "unknown key in a route",
			in:   "routes:\n  - path: /\n    upstrem: http://x\n",
			want: []string{`f.yaml:3: routes[0].upstrem: unknown key (did you mean "upstream"?)`},
		},
		{
			name: "odd key quoted",
			in:   "\"a.b\\nc\": 1\n",
			want: []string{`f.yaml:1: "a.b\nc": unknown key`},
		},
		{
			name: "mapping for a scalar",
			in:   "timeouts:\n  idle:\n    minutes: 5\n",
			want: []string{`f.yaml:3: timeouts.idle: expected a duration, found a mapping`},
		},
		{
			name: "scalar for a mapping",
			in:   "limits: 100\n",
			want: []string{`f.yaml:1: limits: expected a mapping, found "100"`},
		},
		{
			name: "scalar for a list",
			in:   "allowed_origins: https://a\n",
			want: []string{`f.yaml:1: allowed_origins: expected a list, found "https://a"`},
		},
		{
			name: "mapping for a list",
			in:   "routes:\n  path: /\n",
			want: []string{`f.yaml:2: routes: expected a list, found a mapping`},
		},
		{
			name: "list for a string",
			in:   "allowed_origins:\n  - [a]\n",
			want: []string{`f.yaml:2: allowed_origins[0]: expected a string, found a list`},
		},
		{
			name: "not a mapping at all",
			in:   "- listen: :80\n",
			want: []string{`f.yaml:1: expected a mapping, found a list`},
		},
		{
			name: "missing value",
			in:   "limits:\n  per_ip:\nlisten:\n",
			want: []string{
				`f.yaml:2: limits.per_ip: missing value (expected an integer)`,
				`f.yaml:3: listen: missing value (write "" for an empty string)`,
			},
		},
		{
			name: "bad duration",
			in:   "routes:\n  - path: /\n    timeouts:\n      idle: 5 minutes\n",
			want: []string{`f.yaml:4: routes[0].timeouts.idle: invalid duration "5 minutes" (use a number with a unit such as 30s or 5m)`},
		},
		{
			name: "bad integers",
			in:   "limits:\n  per_ip: 1.5\n  rate_table_size: 0x10\n  max_connections: 99999999999999999999\n",
			want: []string{
				`f.yaml:2: limits.per_ip: invalid integer "1.5" (use a whole number such as 100)`,
				`f.yaml:3: limits.rate_table_size: invalid integer "0x10" (use a whole number such as 100)`,
				`f.yaml:4: limits.max_connections: integer "99999999999999999999" is out of range`,
			},
		},
		{
			name: "bad size rate and percent",
			in:   "messages:\n  max_size: 1mb\n  rate: 100\ntimeouts:\n  lifetime_jitter: 0.1\n",
			want: []string{
				`f.yaml:2: messages.max_size: invalid size "1mb" (use a number of bytes or a unit such as 64KiB or 1MiB)`,
				`f.yaml:3: messages.rate: invalid rate "100" (use a count per unit such as 20/s, 100/m or 5/h)`,
				`f.yaml:5: timeouts.lifetime_jitter: invalid percentage "0.1" (use a number with %, such as 10%)`,
			},
		},
		{
			name: "duplicate key",
			in:   "log:\n  level: info\n  level: debug\n",
			want: []string{`f.yaml:3: log.level: duplicate key (first set on line 2)`},
		},
		{
			name: "merge key",
			in:   "log:\n  <<: {level: info}\n",
			want: []string{`f.yaml:2: log."<<": merge keys are not supported (use an alias such as *name)`},
		},
		{
			name: "syntax error",
			in:   "listen: :80\nlog: [text,\n",
			want: []string{`f.yaml:2: invalid YAML: did not find expected node content`},
		},
		{
			name: "tab indentation",
			in:   "log:\n\tlevel: info\n",
			want: []string{`f.yaml:2: invalid YAML: found character that cannot start any token`},
		},
		{
			name: "unknown anchor",
			in:   "listen: :80\nlog: *missing\n",
			want: []string{`f.yaml:2: invalid YAML: unknown anchor 'missing' referenced`},
		},
		{
			name: "control character",
			in:   "listen: :80\nlog: \"\x01\"\n",
			want: []string{`f.yaml:2: invalid YAML: control characters are not allowed`},
		},
		{
			name: "two documents",
			in:   "listen: :80\n---\nlisten: :81\n",
			want: []string{`f.yaml:2: more than one YAML document (put all settings in one)`},
		},
		{
			name: "many errors sorted by line",
			in: "routes:\n  - path: /\n    upstream: http://x\n    messages:\n      burst: lots\n" +
				"timeouts:\n  idle: soon\n  idle: later\nlog:\n  colour: red\n",
			want: []string{
				`f.yaml:5: routes[0].messages.burst: invalid integer "lots" (use a whole number such as 100)`,
				`f.yaml:7: timeouts.idle: invalid duration "soon" (use a number with a unit such as 30s or 5m)`,
				`f.yaml:8: timeouts.idle: duplicate key (first set on line 7)`,
				`f.yaml:10: log.colour: unknown key`,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := Parse("f.yaml", []byte(tt.in))
			if got := errorLines(t, err); !slices.Equal(got, tt.want) {
				t.Fatalf("errors:\n got %q\nwant %q", got, tt.want)
			}
		})
	}
}

// errorLines checks that err is an *ErrorList and returns its errors.
func errorLines(t *testing.T, err error) []string {
	t.Helper()
	var list *ErrorList
	if !errors.As(err, &list) {
		t.Fatalf("error %v (%T) is not an *ErrorList", err, err)
	}
	var lines []string
	for _, e := range list.Errors {
		lines = append(lines, e.Error())
	}
	if joined := strings.Join(lines, "\n"); list.Error() != joined {
		t.Errorf("Error() = %q, want the lines joined: %q", list.Error(), joined)
	}
	return lines
}

func TestErrorFields(t *testing.T) {
	t.Parallel()
	_, err := Parse("cfg/wsguard.yaml", []byte("\nlimits:\n  per_ip: many\n"))
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("errors.As(%v, *Error) failed", err)
	}
	want := Error{File: "cfg/wsguard.yaml", Line: 3, Key: "limits.per_ip",
		Problem: `invalid integer "many" (use a whole number such as 100)`}
	if *e != want {
		t.Fatalf("error = %+v, want %+v", *e, want)
	}
}

func TestErrorFormat(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		err  Error
		want string
	}{
		{"everything", Error{"a.yaml", 3, "log.level", "bad"}, "a.yaml:3: log.level: bad"},
		{"no line", Error{"a.yaml", 0, "routes", "bad"}, "a.yaml: routes: bad"},
		{"no file", Error{"", 0, "listen", "bad"}, "listen: bad"},
		{"no key", Error{"a.yaml", 1, "", "bad"}, "a.yaml:1: bad"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := tt.err.Error(); got != tt.want {
				t.Fatalf("Error() = %q, want %q", got, tt.want)
			}
		})
	}
}
