package clientip_test

import (
	"fmt"
	"net/netip"

	"github.com/wsguard/wsguard/clientip"
	"github.com/wsguard/wsguard/internal/httphead"
)

// A client behind two proxies sends a forged X-Forwarded-For; each proxy
// appends the peer it saw. Only the entries the proxies wrote are
// believed.
func ExampleResolver_Resolve() {
	trusted, err := clientip.ParseCIDRs([]string{"10.0.0.0/8"})
	if err != nil {
		fmt.Println(err)
		return
	}
	h, err := clientip.ParseHeader("x-forwarded-for")
	if err != nil {
		fmt.Println(err)
		return
	}
	r := clientip.NewResolver(trusted, h)

	fields := httphead.Fields{{
		Name:  []byte("X-Forwarded-For"),
		Value: []byte("1.2.3.4, 203.0.113.7, 10.0.0.1"),
	}}
	res := r.Resolve(netip.MustParseAddr("10.0.0.2"), fields)
	fmt.Println("client:", res.Addr)
	fmt.Println("via:", res.Via)
	fmt.Println("X-Forwarded-For:", res.Chain)

	// The same header straight from the client is ignored.
	res = r.Resolve(netip.MustParseAddr("198.51.100.9"), fields)
	fmt.Println("direct client:", res.Addr)
	// Output:
	// client: 203.0.113.7
	// via: 10.0.0.1
	// X-Forwarded-For: 203.0.113.7, 10.0.0.1, 10.0.0.2
	// direct client: 198.51.100.9
}
