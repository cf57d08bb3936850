package lab

import (
	"net"
	"strings"
	"syscall"
	"testing"
)

func TestParseNofile(t *testing.T) {
	t.Parallel()
	limits := "Limit                     Soft Limit           Hard Limit           Units     \n" +
		"Max processes             63448                63448                processes \n" +
		"Max open files            1024                 4096                 files     \n"
	if got := parseNofile([]byte(limits)); got != 1024 {
		t.Errorf("nofile %d, want the soft limit 1024", got)
	}
}

func TestAddEstablished(t *testing.T) {
	t.Parallel()
	table := `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 111 1 0000000000000000 100 0 0 10 0
   1: 0100007F:1F90 0200007F:C350 01 00000000:00000000 00:00000000 00000000     0        0 222 1 0000000000000000 20 4 30 10 -1
   2: 0100007F:1F90 0300007F:C351 06 00000000:00000000 03:00000F9E 00000000     0        0 0 3 0000000000000000
   3: 0100007F:1F90 0400007F:C352 01 00000000:00000000 00:00000000 00000000     0        0 333 1 0000000000000000 20 4 30 10 -1
`
	set := map[uint64]bool{}
	addEstablished(strings.NewReader(table), set)
	if len(set) != 2 || !set[222] || !set[333] {
		t.Errorf("established %v, want 222 and 333", set)
	}
}

// TestReadGroupSeesThisProcess reads this test's own process group, with
// one established loopback connection open.
func TestReadGroupSeesThisProcess(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	u := readGroup(syscall.Getpgrp())
	if u.procs < 1 || u.fds < 4 || u.rss <= 0 || u.fdLimit <= 0 {
		t.Fatalf("group usage %+v: want this process, its descriptors, memory and limit", u)
	}
	// Both ends of the connection belong to this process.
	if n := countIn(u.sockets, establishedInodes()); n < 2 {
		t.Errorf("%d established sockets, want at least the 2 ends of the test's connection", n)
	}
}
