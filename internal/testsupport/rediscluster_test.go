package testsupport

import (
	"bufio"
	"context"
	"net"
	"testing"
	"time"
)

func TestRedisCluster(t *testing.T) {
	t.Parallel()
	c := StartRedisCluster(t, 3)
	if len(c.Addrs) != 3 || len(c.Nodes) != 3 {
		t.Fatalf("%d addrs and %d nodes, want 3 of each", len(c.Addrs), len(c.Nodes))
	}

	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	want := map[string]string{"cluster_state": "ok", "cluster_size": "3", "cluster_known_nodes": "3"}
	for _, addr := range c.Addrs {
		if err := checkClusterInfo(ctx, addr, want); err != nil {
			t.Errorf("CLUSTER INFO of %s: %v", addr, err)
		}
	}

	// redis-cli gives the last master the highest slots, where "a" (slot
	// 15495) lives: the first master redirects there.
	conn, err := net.DialTimeout("tcp", c.Addrs[0], 5*time.Second)
	if err != nil {
		t.Fatalf("connecting to %s: %v", c.Addrs[0], err)
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(testTimeout)); err != nil {
		t.Fatal(err)
	}
	rw := bufio.NewReadWriter(bufio.NewReader(conn), bufio.NewWriter(conn))
	if got, want := redisCmd(t, rw, "SET", "a", "1"), "-MOVED 15495 "+c.Addrs[2]; got != want {
		t.Errorf("SET a on the first master = %q, want %q", got, want)
	}
	conn.Close()

	for _, p := range c.Nodes {
		if err := p.Stop(); err != nil {
			t.Errorf("Stop %s: %v", p.Addr, err)
		}
	}
}
