package flood

import (
	"errors"
	"testing"
)

func TestParseSources(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in    string
		n     int
		at    map[int]string
		wrong bool
	}{
		{in: "127.0.0.2-127.0.0.254", n: 253, at: map[int]string{0: "127.0.0.2", 252: "127.0.0.254", 253: "127.0.0.2"}},
		{in: "10.0.0.1, 10.0.0.5-10.0.0.6", n: 3, at: map[int]string{1: "10.0.0.5", 2: "10.0.0.6"}},
		{in: "127.0.1.0/30,127.0.0.9", n: 5, at: map[int]string{3: "127.0.1.3", 4: "127.0.0.9"}},
		{in: "127.0.0.255-127.0.1.1", n: 3, at: map[int]string{2: "127.0.1.1"}},
		{in: "127.0.0.5-127.0.0.4", wrong: true},
		{in: "::1", wrong: true},
		{in: "127.0.0.0/7", wrong: true},
		{in: "", wrong: true},
		{in: "127.0.0.x", wrong: true},
	}
	for _, tt := range tests {
		s, err := ParseSources(tt.in)
		if tt.wrong {
			if !errors.Is(err, ErrConfig) {
				t.Errorf("%q: %v, want an error wrapping ErrConfig", tt.in, err)
			}
			continue
		}
		if err != nil || s.Len() != tt.n {
			t.Errorf("%q: %d addresses, %v; want %d", tt.in, s.Len(), err, tt.n)
			continue
		}
		for i, want := range tt.at {
			if got := s.At(i).String(); got != want {
				t.Errorf("%q: At(%d) = %s, want %s", tt.in, i, got, want)
			}
			if !s.Contains(s.At(i)) {
				t.Errorf("%q does not contain its own %s", tt.in, s.At(i))
			}
		}
	}
}

func TestParseRate(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]float64{"500/s": 500, "500": 500, "30/m": 0.5, "36/h": 0.01, "0": 0, "0.5/s": 0.5} {
		if got, err := ParseRate(in); err != nil || got != want {
			t.Errorf("ParseRate(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "-1/s", "5/d", "fast", "1/s/s"} {
		if _, err := ParseRate(in); !errors.Is(err, ErrConfig) {
			t.Errorf("ParseRate(%q): %v, want an error", in, err)
		}
	}
}

func TestParseSize(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]int64{"512": 512, "16B": 16, "64KiB": 64 << 10, "2MiB": 2 << 20, "1MB": 1e6, "1GiB": 1 << 30} {
		if got, err := ParseSize(in); err != nil || got != want {
			t.Errorf("ParseSize(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "-1", "2 lots", "1.5MiB", "99999999999GiB"} {
		if _, err := ParseSize(in); !errors.Is(err, ErrConfig) {
			t.Errorf("ParseSize(%q): %v, want an error", in, err)
		}
	}
}

func TestParseScenarios(t *testing.T) {
	t.Parallel()
	got, err := ParseScenarios("idle-hold, slowloris")
	if err != nil || len(got) != 2 || got[1] != Slowloris {
		t.Errorf("got %v, %v", got, err)
	}
	for _, in := range []string{"idle-hold,idle-hold", "nap", ""} {
		if _, err := ParseScenarios(in); !errors.Is(err, ErrConfig) {
			t.Errorf("ParseScenarios(%q): %v, want an error", in, err)
		}
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	ok := Config{Target: "ws://127.0.0.1:1/ws"}
	if err := ok.Validate(); err != nil {
		t.Fatalf("a minimal config: %v", err)
	}
	for name, mutate := range map[string]func(c *Config){
		"no target":        func(c *Config) { c.Target = "" },
		"negative rate":    func(c *Config) { c.Rate = -1 },
		"unknown scenario": func(c *Config) { c.Scenarios = []Scenario{"nap"} },
		"huge message":     func(c *Config) { c.MessageSize = 2 << 30 },
		"token with CRLF":  func(c *Config) { c.Tokens = []string{"a\r\nX-Evil: 1"} },
		"part out of range": func(c *Config) {
			c.Part = Part{Index: 2, Of: 2}
		},
	} {
		c := ok
		mutate(&c)
		if err := c.Validate(); !errors.Is(err, ErrConfig) {
			t.Errorf("%s: %v, want an error wrapping ErrConfig", name, err)
		}
	}
}
