package lab

import (
	"fmt"
	"strings"
	"time"

	"github.com/wsguard/wsguard/flood"
)

// Scenario is one attack the lab stages against both arms.
type Scenario struct {
	// Name identifies the scenario on the command line and in the report.
	Name string `json:"name"`
	// Description says in one sentence what the attacker does.
	Description string `json:"description"`
	// Attacks are the flood scenarios given to the connections in turn.
	Attacks []flood.Scenario `json:"attacks"`
	// Connections, Rate (per second, 0 unpaced) and Duration are those of
	// the flood.
	Connections int           `json:"connections"`
	Rate        float64       `json:"rate"`
	Duration    time.Duration `json:"-"`
	// Sources are the attacker's addresses, as flood.ParseSources reads
	// them.
	Sources string `json:"sources"`
	// Tune adjusts the flood's settings beyond the above; nil keeps the
	// flood's defaults.
	Tune func(*flood.Config) `json:"-"`
}

// botnet is the attacker's 200 loopback addresses; the probe keeps
// 127.0.0.1 to itself.
const botnet = "127.0.0.2-127.0.0.201"

// Scenarios is the catalogue, by name. Sizes assume a backend that holds
// about a thousand descriptors, as --backend-nofile 1024 gives it.
var Scenarios = []Scenario{
	{
		Name:        "hold",
		Description: "200 addresses open 1,500 connections at 500/s and hold them: half send nothing (idle-hold), half ping every 2 s (ping-keepalive).",
		Attacks:     []flood.Scenario{flood.IdleHold, flood.PingKeepalive},
		// 15 s, so that the seconds the backend takes to fill up and the
		// probes that outlast the attack's end weigh little.
		Connections: 1500, Rate: 500, Duration: 15 * time.Second, Sources: botnet,
		Tune: func(c *flood.Config) { c.PingEvery = 2 * time.Second },
	},
	{
		Name:        "slowloris",
		Description: "200 addresses open 1,500 connections at 500/s and send their upgrade requests one header line a second, never finishing them.",
		Attacks:     []flood.Scenario{flood.Slowloris},
		Connections: 1500, Rate: 500, Duration: 12 * time.Second, Sources: botnet,
		Tune: func(c *flood.Config) { c.SlowlorisInterval = time.Second },
	},
	{
		Name:        "slow-reader",
		Description: "200 addresses open 300 connections that send 1 KiB every 10 ms to the echo and never read the answers.",
		Attacks:     []flood.Scenario{flood.SlowReader},
		Connections: 300, Rate: 300, Duration: 12 * time.Second, Sources: botnet,
	},
	{
		Name:        "churn",
		Description: "200 connections from 200 addresses upgrade and close again as fast as the server lets them.",
		Attacks:     []flood.Scenario{flood.Churn},
		Connections: 200, Rate: 0, Duration: 10 * time.Second, Sources: botnet,
	},
	{
		Name:        "oversize",
		Description: "100 connections from 100 addresses send a 2 MiB message every second.",
		Attacks:     []flood.Scenario{flood.Oversize},
		Connections: 100, Rate: 100, Duration: 10 * time.Second, Sources: "127.0.0.2-127.0.0.101",
		Tune: func(c *flood.Config) { c.PingEvery = time.Second },
	},
}

// Suites are ready-made lists of scenario names.
var Suites = map[string][]string{
	// quick is the headline scenario alone, under a minute in all.
	"quick": {"hold"},
	// full is every scenario of the catalogue, about four minutes.
	"full": {"hold", "slowloris", "slow-reader", "churn", "oversize"},
}

// Lookup returns the scenarios of a comma-separated list of names.
func Lookup(names string) ([]Scenario, error) {
	var out []Scenario
	seen := map[string]bool{}
	for _, name := range strings.Split(names, ",") {
		name = strings.TrimSpace(name)
		sc, ok := find(name)
		if !ok {
			return nil, fmt.Errorf("unknown scenario %q (have %s)", name, strings.Join(Names(), ", "))
		}
		if seen[name] {
			return nil, fmt.Errorf("scenario %q is listed twice", name)
		}
		seen[name] = true
		out = append(out, sc)
	}
	return out, nil
}

// Suite returns the scenarios of a suite.
func Suite(name string) ([]Scenario, error) {
	names, ok := Suites[name]
	if !ok {
		return nil, fmt.Errorf("unknown suite %q (have quick, full)", name)
	}
	return Lookup(strings.Join(names, ","))
}

// Names lists the catalogue's scenario names.
func Names() []string {
	names := make([]string, len(Scenarios))
	for i, sc := range Scenarios {
		names[i] = sc.Name
	}
	return names
}

func find(name string) (Scenario, bool) {
	for _, sc := range Scenarios {
		if sc.Name == name {
			return sc, true
		}
	}
	return Scenario{}, false
}

// floodConfig returns the flood's settings for an attack on target.
func (sc Scenario) floodConfig(target string) (flood.Config, error) {
	src, err := flood.ParseSources(sc.Sources)
	if err != nil {
		return flood.Config{}, fmt.Errorf("scenario %s: sources: %w", sc.Name, err)
	}
	cfg := flood.Config{
		Target:      target,
		Scenarios:   sc.Attacks,
		Connections: sc.Connections,
		Rate:        sc.Rate,
		Duration:    sc.Duration,
		Sources:     src,
		// The lab's own probe measures the whole arm, recovery included.
		Probe: flood.ProbeConfig{Interval: 0},
	}
	if sc.Tune != nil {
		sc.Tune(&cfg)
	}
	return cfg, cfg.Validate()
}
