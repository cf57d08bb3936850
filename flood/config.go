package flood

import (
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"strings"
	"time"
)

// Scenario names one way of attacking a WebSocket server.
type Scenario string

// The scenarios. The package documentation says what each one does.
const (
	IdleHold      Scenario = "idle-hold"
	PingKeepalive Scenario = "ping-keepalive"
	DataKeepalive Scenario = "data-keepalive"
	IgnorePings   Scenario = "ignore-pings"
	SlowPongs     Scenario = "slow-pongs"
	Slowloris     Scenario = "slowloris"
	SlowReader    Scenario = "slow-reader"
	Churn         Scenario = "churn"
	Oversize      Scenario = "oversize"
	FragmentFlood Scenario = "fragment-flood"
)

// AllScenarios lists every scenario, in the order the documentation
// describes them.
var AllScenarios = []Scenario{
	IdleHold, PingKeepalive, DataKeepalive, IgnorePings, SlowPongs,
	Slowloris, SlowReader, Churn, Oversize, FragmentFlood,
}

// ParseScenarios parses a comma-separated list of scenario names. A name
// may appear once.
func ParseScenarios(s string) ([]Scenario, error) {
	var out []Scenario
	seen := map[Scenario]bool{}
	for _, name := range strings.Split(s, ",") {
		sc := Scenario(strings.TrimSpace(name))
		if !sc.valid() {
			return nil, configErrorf("unknown scenario %q (one of %s)", sc, scenarioNames())
		}
		if seen[sc] {
			return nil, configErrorf("scenario %q given twice", sc)
		}
		seen[sc] = true
		out = append(out, sc)
	}
	return out, nil
}

func (sc Scenario) valid() bool {
	for _, known := range AllScenarios {
		if sc == known {
			return true
		}
	}
	return false
}

func scenarioNames() string {
	names := make([]string, len(AllScenarios))
	for i, sc := range AllScenarios {
		names[i] = string(sc)
	}
	return strings.Join(names, ", ")
}

// ErrConfig is wrapped by every error that a Config is unusable: a value
// out of range or a target that may not be flooded. The command line
// answers it with exit status 2.
var ErrConfig = errors.New("flood: invalid configuration")

func configErrorf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrConfig}, args...)...)
}

// Config describes one run. Zero fields take the defaults shown in their
// comments, except where a comment gives zero a meaning of its own. Run
// copies the Config and never modifies the caller's value.
type Config struct {
	// Target is the ws:// URL to attack (http:// is taken as ws://).
	// Required. Its host must resolve to loopback unless AllowTargets
	// covers it.
	Target string
	// Scenarios are given to the connections in turn: connection i runs
	// Scenarios[i%len(Scenarios)]. Default [IdleHold].
	Scenarios []Scenario
	// Connections is how many connections the run opens, over all
	// processes. Churn connections are reopened for the whole run; the
	// others are opened once (see Reconnect). Default 100.
	Connections int
	// Rate is how many connections are opened per second, over all
	// processes. Zero opens them as fast as the target accepts.
	Rate float64
	// Duration is how long the run lasts; every connection is closed when
	// it ends. Default 10s.
	Duration time.Duration
	// Sources are the IPv4 addresses connections are bound to, taken in
	// turn. Empty leaves the choice to the kernel.
	Sources Sources
	// XFF adds X-Forwarded-For and X-Real-IP headers with a random
	// address to every upgrade request.
	XFF bool
	// Tokens are sent as "Authorization: Bearer" headers, taken in turn.
	Tokens []string
	// Reconnect opens a connection again, at Rate, when the server
	// refused or closed it before the run ended.
	Reconnect bool

	// PingEvery is how often PingKeepalive pings, DataKeepalive sends its
	// message and Oversize sends another message. Default 5s.
	PingEvery time.Duration
	// PongDelay is how late SlowPongs answers a ping. Default 5s.
	PongDelay time.Duration
	// SlowlorisInterval is the time between two header lines of
	// Slowloris. Default 2s.
	SlowlorisInterval time.Duration
	// ReaderRequest is the text message SlowReader sends to make the
	// server write, for an echo server any text. Default 1 KiB of text.
	ReaderRequest string
	// ReaderEvery is how often SlowReader sends ReaderRequest. Default
	// 10ms.
	ReaderEvery time.Duration
	// MessageSize is the payload size of Oversize's messages. Default
	// 2 MiB, twice wsguard's default limit.
	MessageSize int64
	// FragmentSize is the payload size of FragmentFlood's frames.
	// Default 16.
	FragmentSize int
	// FragmentEvery is the time between two of FragmentFlood's frames.
	// Default 10ms.
	FragmentEvery time.Duration

	// HandshakeTimeout bounds connecting and upgrading. Default 10s.
	HandshakeTimeout time.Duration
	// WriteTimeout bounds every write. A write that times out is counted
	// in WritesStalled and the connection sends nothing more. Default 5s.
	WriteTimeout time.Duration

	// AllowTargets are the ranges a non-loopback target may be in.
	AllowTargets []netip.Prefix
	// Probe configures the legitimate-user probe; a zero Interval turns
	// it off.
	Probe ProbeConfig
	// Part is the share of the run this process does, when RunProcs
	// spreads a run over several. The zero value is the whole run.
	Part Part

	// dial replaces the TCP dialer, for tests.
	dial dialFunc
}

// ProbeConfig configures the probe: a well-behaved client that opens a
// fresh connection every Interval, sends one text message, waits for its
// echo and closes.
type ProbeConfig struct {
	// Interval between two probes. Zero turns the probe off.
	Interval time.Duration
	// Target is the ws:// URL probed, which must echo text messages.
	// Default: Config.Target.
	Target string
	// Source is the address the probe binds to. The zero value picks a
	// loopback address outside Config.Sources for a loopback target, and
	// leaves the choice to the kernel otherwise.
	Source netip.Addr
	// Timeout bounds one probe, from dialing to the echo. Default 2s.
	Timeout time.Duration
	// Token, when set, is sent as "Authorization: Bearer".
	Token string
}

// Part is one process's share of a run spread over Of processes: the
// connections whose index i has i%Of == Index, at Rate/Of per second. The
// zero value is the whole run.
type Part struct {
	Index int
	Of    int
	// Epoch is when the whole run started; the run ends at Epoch plus
	// Duration and the per-second series counts from it. Zero means now.
	Epoch time.Time
}

// Defaults, applied by withDefaults.
const (
	defaultConnections       = 100
	defaultDuration          = 10 * time.Second
	defaultPingEvery         = 5 * time.Second
	defaultPongDelay         = 5 * time.Second
	defaultSlowlorisInterval = 2 * time.Second
	defaultReaderEvery       = 10 * time.Millisecond
	defaultMessageSize       = 2 << 20
	defaultFragmentSize      = 16
	defaultFragmentEvery     = 10 * time.Millisecond
	defaultHandshakeTimeout  = 10 * time.Second
	defaultWriteTimeout      = 5 * time.Second
	defaultProbeTimeout      = 2 * time.Second

	// maxMessageSize and maxFragmentSize keep one write from needing an
	// unreasonable buffer or time.
	maxMessageSize  = 1 << 30
	maxFragmentSize = 1 << 20
)

// defaultReaderRequest is SlowReader's message when none is given: 1 KiB
// of text, so an echo server has something to write back.
var defaultReaderRequest = "wsguard flood slow-reader " + strings.Repeat(".", 1024-26)

// withDefaults returns a copy of c with the defaults filled in.
func (c Config) withDefaults() Config {
	if len(c.Scenarios) == 0 {
		c.Scenarios = []Scenario{IdleHold}
	}
	c.Scenarios = append([]Scenario(nil), c.Scenarios...)
	setInt(&c.Connections, defaultConnections)
	setDuration(&c.Duration, defaultDuration)
	setDuration(&c.PingEvery, defaultPingEvery)
	setDuration(&c.PongDelay, defaultPongDelay)
	setDuration(&c.SlowlorisInterval, defaultSlowlorisInterval)
	setDuration(&c.ReaderEvery, defaultReaderEvery)
	setDuration(&c.FragmentEvery, defaultFragmentEvery)
	setDuration(&c.HandshakeTimeout, defaultHandshakeTimeout)
	setDuration(&c.WriteTimeout, defaultWriteTimeout)
	setDuration(&c.Probe.Timeout, defaultProbeTimeout)
	setInt(&c.FragmentSize, defaultFragmentSize)
	if c.MessageSize == 0 {
		c.MessageSize = defaultMessageSize
	}
	if c.ReaderRequest == "" {
		c.ReaderRequest = defaultReaderRequest
	}
	if c.Probe.Target == "" {
		c.Probe.Target = c.Target
	}
	if c.Part.Of == 0 {
		c.Part.Of = 1
	}
	return c
}

func setInt(v *int, def int) {
	if *v == 0 {
		*v = def
	}
}

func setDuration(v *time.Duration, def time.Duration) {
	if *v == 0 {
		*v = def
	}
}

// Validate reports the first problem of c after defaults are applied, as
// an error wrapping ErrConfig. It does not resolve or check the target's
// address; Run does that, before any packet is sent.
func (c Config) Validate() error {
	c = c.withDefaults()
	if _, err := parseTarget(c.Target); err != nil {
		return err
	}
	if _, err := parseTarget(c.Probe.Target); err != nil {
		return fmt.Errorf("probe %w", err)
	}
	for _, sc := range c.Scenarios {
		if !sc.valid() {
			return configErrorf("unknown scenario %q", sc)
		}
	}
	for _, p := range []struct {
		problem string
		bad     bool
	}{
		{"connections must be at least 1", c.Connections < 1},
		{"rate must not be negative", c.Rate < 0},
		{"duration must be positive", c.Duration < 0},
		{"ping interval must be positive", c.PingEvery < 0},
		{"pong delay must be positive", c.PongDelay < 0},
		{"slowloris interval must be positive", c.SlowlorisInterval < 0},
		{"reader interval must be positive", c.ReaderEvery < 0},
		{"fragment interval must be positive", c.FragmentEvery < 0},
		{"handshake timeout must be positive", c.HandshakeTimeout < 0},
		{"write timeout must be positive", c.WriteTimeout < 0},
		{"probe interval must not be negative", c.Probe.Interval < 0},
		{"probe timeout must be positive", c.Probe.Timeout < 0},
		{fmt.Sprintf("message size must be from 1 to %d bytes", maxMessageSize),
			c.MessageSize < 1 || c.MessageSize > maxMessageSize},
		{fmt.Sprintf("fragment size must be from 1 to %d bytes", maxFragmentSize),
			c.FragmentSize < 1 || c.FragmentSize > maxFragmentSize},
		{"part index out of range", c.Part.Of < 1 || c.Part.Index < 0 || c.Part.Index >= c.Part.Of},
	} {
		if p.bad {
			return configErrorf("%s", p.problem)
		}
	}
	for _, tok := range c.Tokens {
		if tok == "" || strings.ContainsAny(tok, "\r\n") {
			return configErrorf("a bearer token is empty or holds a line break")
		}
	}
	if strings.ContainsAny(c.Probe.Token, "\r\n") {
		return configErrorf("the probe's bearer token holds a line break")
	}
	if c.Probe.Source.IsValid() && !c.Probe.Source.Is4() {
		return configErrorf("probe source %s is not an IPv4 address", c.Probe.Source)
	}
	return nil
}

// parseTarget checks that raw is a ws:// URL with a host and returns it.
func parseTarget(raw string) (*url.URL, error) {
	if raw == "" {
		return nil, configErrorf("target is required (a ws:// URL)")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, configErrorf("target %q: %v", raw, err)
	}
	switch u.Scheme {
	case "ws", "http":
	case "wss", "https":
		return nil, configErrorf("target %q: TLS targets are not supported yet", raw)
	default:
		return nil, configErrorf("target %q: scheme must be ws (or http)", raw)
	}
	if u.Hostname() == "" {
		return nil, configErrorf("target %q has no host", raw)
	}
	if u.User != nil || u.Fragment != "" {
		return nil, configErrorf("target %q: no user info or fragment, please", raw)
	}
	return u, nil
}
