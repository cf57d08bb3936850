package testsupport

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// clusterSlots is how many hash slots a Redis Cluster has.
const clusterSlots = 16384

// Cluster is a Redis Cluster of masters only, without replicas, started by
// [StartRedisCluster]. Its processes are stopped when the test ends.
type Cluster struct {
	// Addrs are the masters' "host:port", in the order they were created:
	// redis-cli gives the first one the lowest hash slots.
	Addrs []string
	Nodes []*Process // the redis-server processes, in the order of Addrs
}

// StartRedisCluster runs masters redis-server processes in cluster mode,
// each on free loopback ports with its own scratch directory, joins them
// with `redis-cli --cluster create` (at least 3 masters, no replicas) and
// returns once every node reports cluster_state:ok and knows every other.
// It calls [Require] if redis-server or redis-cli is missing or too old
// for cluster mode, and fails the test, with the output, if the cluster is
// not ready in time.
func StartRedisCluster(t testing.TB, masters int) *Cluster {
	t.Helper()
	if masters < 3 {
		t.Fatalf("StartRedisCluster(%d): redis-cli needs at least 3 masters", masters)
	}
	server := LookPath(t, "redis-server")
	cli := LookPath(t, "redis-cli")

	c := &Cluster{}
	for range masters {
		p := startClusterNode(t, server)
		c.Nodes = append(c.Nodes, p)
		c.Addrs = append(c.Addrs, p.Addr)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 3*readyTimeout)
	defer cancel()
	if out, err := createCluster(ctx, cli, c.Addrs); err != nil {
		t.Fatalf("redis-cli --cluster create %s: %v\noutput:\n%s", strings.Join(c.Addrs, " "), err, out)
	}
	if err := c.waitReady(ctx); err != nil {
		t.Fatalf("starting a Redis Cluster: %v", err)
	}
	return c
}

// startClusterNode starts one cluster-enabled redis-server and waits until
// it answers PING. The client port and the cluster bus port are both
// chosen free, rather than the bus taking port+10000, which may be taken
// or out of range.
func startClusterNode(t testing.TB, bin string) *Process {
	t.Helper()
	dir := t.TempDir()

	for try := 1; ; try++ {
		port, bus := FreePort(t), FreePort(t)
		if port == bus {
			continue
		}
		p := start(t, "redis-server:"+strconv.Itoa(port), bin,
			"--port", strconv.Itoa(port), "--cluster-port", strconv.Itoa(bus),
			"--cluster-enabled", "yes",
			"--cluster-config-file", filepath.Join(dir, fmt.Sprintf("nodes-%d.conf", port)),
			"--cluster-node-timeout", "2000",
			"--save", "", "--appendonly", "no",
			"--bind", "127.0.0.1", "--protected-mode", "no", "--dir", dir)
		p.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))

		err := waitRedis(p)
		if err == nil {
			return p
		}
		out := p.Output()
		if errors.Is(err, errExited) && strings.Contains(out, "cluster-port") {
			Require(t, "redis-server 7.0 or later (cluster-port)", lastLine([]byte(out)))
		}
		if errors.Is(err, errExited) && try < redisPortTries &&
			strings.Contains(out, "Address already in use") {
			t.Logf("redis-server lost port %d or %d to another process, retrying", port, bus)
			continue
		}
		t.Fatalf("waiting for redis-server on %s: %v\noutput:\n%s", p.Addr, err, out)
	}
}

// createCluster runs `redis-cli --cluster create` on addrs, which assigns
// the slots, gives each node its config epoch and joins them, waiting
// (by its own polling) until they agree on the configuration.
func createCluster(ctx context.Context, cli string, addrs []string) (string, error) {
	args := append([]string{"--cluster", "create"}, addrs...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	cmd := exec.CommandContext(ctx, cli, args...)
	cmd.WaitDelay = pipeGrace
	setParentDeathSignal(cmd)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// waitReady polls CLUSTER INFO on every node until each reports the
// cluster ok, every slot assigned and every node known. It fails early if
// a node exits.
func (c *Cluster) waitReady(ctx context.Context) error {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()

	want := map[string]string{
		"cluster_state":          "ok",
		"cluster_slots_assigned": strconv.Itoa(clusterSlots),
		"cluster_known_nodes":    strconv.Itoa(len(c.Nodes)),
	}
	for _, p := range c.Nodes {
		var last error
		for {
			if last = checkClusterInfo(ctx, p.Addr, want); last == nil {
				break
			}
			select {
			case <-tick.C:
			case <-p.done:
				return fmt.Errorf("cluster node %s: %w: %v", p.Addr, errExited, exitError(p.waitErr))
			case <-ctx.Done():
				return fmt.Errorf("waiting for cluster node %s: %w (last: %v)", p.Addr, ctx.Err(), last)
			}
		}
	}
	return nil
}

// checkClusterInfo asks addr for CLUSTER INFO and compares the fields of
// want.
func checkClusterInfo(ctx context.Context, addr string, want map[string]string) error {
	info, err := clusterInfo(ctx, addr)
	if err != nil {
		return err
	}
	for k, v := range want {
		if info[k] != v {
			return fmt.Errorf("%s is %q, want %q", k, info[k], v)
		}
	}
	return nil
}

// clusterInfo sends one RESP CLUSTER INFO to addr and returns its fields.
func clusterInfo(ctx context.Context, addr string) (map[string]string, error) {
	d := net.Dialer{Timeout: time.Second}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("connecting: %w", err)
	}
	defer conn.Close()

	if err := conn.SetDeadline(time.Now().Add(time.Second)); err != nil {
		return nil, fmt.Errorf("setting deadline: %w", err)
	}
	if _, err := io.WriteString(conn, "*2\r\n$7\r\nCLUSTER\r\n$4\r\nINFO\r\n"); err != nil {
		return nil, fmt.Errorf("sending CLUSTER INFO: %w", err)
	}
	body, err := readBulk(bufio.NewReader(conn))
	if err != nil {
		return nil, fmt.Errorf("reading CLUSTER INFO reply: %w", err)
	}
	info := make(map[string]string)
	for _, line := range strings.Split(body, "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), ":"); ok {
			info[k] = v
		}
	}
	return info, nil
}

// readBulk reads one RESP bulk string; an error reply becomes an error.
func readBulk(r *bufio.Reader) (string, error) {
	head, err := r.ReadString('\n')
	if err != nil {
		return "", err
	}
	head = strings.TrimSuffix(head, "\r\n")
	if strings.HasPrefix(head, "-") {
		return "", fmt.Errorf("redis error: %s", head[1:])
	}
	if !strings.HasPrefix(head, "$") {
		return "", fmt.Errorf("reply %q is not a bulk string", head)
	}
	n, err := strconv.Atoi(head[1:])
	if err != nil || n < 0 {
		return "", fmt.Errorf("bad bulk length in %q", head)
	}
	buf := make([]byte, n+2) // the body and its CRLF
	if _, err := io.ReadFull(r, buf); err != nil {
		return "", err
	}
	return string(buf[:n]), nil
}
