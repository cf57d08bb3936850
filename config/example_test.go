package config_test

import (
	"fmt"

	"github.com/wsguard/wsguard/config"
)

func ExampleParse() {
	file := []byte(`
timeouts:
  idle: 10m
routes:
  - path: /chat
    upstream: ws://127.0.0.1:3000
    timeouts:
      ping_interval: 10s
`)
	c, err := config.Parse("wsguard.yaml", file)
	if err == nil {
		err = c.Validate()
	}
	if err != nil {
		fmt.Println(err)
		return
	}
	r, _ := c.RouteFor("/chat/room/1")
	fmt.Println(r.Upstream, r.Timeouts.Idle, r.Timeouts.PingInterval, r.Messages.MaxSize)
	// Output: ws://127.0.0.1:3000 10m 10s 1MiB
}

func ExampleParse_errors() {
	file := []byte(`
timeouts:
  idle: 5 minutes
routes:
  - path: /chat
    upstream: ws://127.0.0.1:3000
    messages:
      overrate: close
`)
	_, err := config.Parse("wsguard.yaml", file)
	fmt.Println(err)
	// Output:
	// wsguard.yaml:3: timeouts.idle: invalid duration "5 minutes" (use a number with a unit such as 30s or 5m)
	// wsguard.yaml:8: routes[0].messages.overrate: unknown key (did you mean "over_rate"?)
}

func ExampleFDBudget() {
	conns, pending := config.FDBudget(20000)
	fmt.Println(conns, pending)
	// Output: 8968 1000
}
