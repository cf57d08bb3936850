package flood_test

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/wsguard/wsguard/flood"
)

func ExampleParseSources() {
	src, err := flood.ParseSources("127.0.0.2-127.0.0.254,127.0.1.0/30")
	if err != nil {
		panic(err)
	}
	fmt.Println(src.Len(), src.At(0), src.At(253), src.At(257))
	// Output: 257 127.0.0.2 127.0.1.0 127.0.0.2
}

func ExampleParseRate() {
	perSecond, _ := flood.ParseRate("30/m")
	fmt.Println(perSecond)
	// Output: 0.5
}

// Hold 500 idle connections on a local server for a minute, from 253
// addresses, while a probe checks every 100ms that a user still gets in.
func ExampleRun() {
	sources, _ := flood.ParseSources("127.0.0.2-127.0.0.254")
	res, err := flood.Run(context.Background(), flood.Config{
		Target:      "ws://127.0.0.1:8080/ws",
		Scenarios:   []flood.Scenario{flood.IdleHold},
		Connections: 500,
		Rate:        100,
		Duration:    time.Minute,
		Sources:     sources,
		Probe:       flood.ProbeConfig{Interval: 100 * time.Millisecond},
	}, nil)
	if err != nil {
		fmt.Println(err) // an invalid config or a target that may not be flooded
		return
	}
	res.WriteSummary(os.Stdout)
}
