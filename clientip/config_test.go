package clientip

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
)

func TestParseCIDRs(t *testing.T) {
	t.Parallel()
	got, err := ParseCIDRs([]string{
		"10.0.0.0/8",
		"10.1.2.3/16",
		" 192.0.2.1 ",
		"2001:db8::/32",
		"2001:db8::1",
		"::ffff:172.16.0.0/108",
		"::ffff:192.0.2.9",
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []netip.Prefix{
		netip.MustParsePrefix("10.0.0.0/8"),
		netip.MustParsePrefix("10.1.0.0/16"),
		netip.MustParsePrefix("192.0.2.1/32"),
		netip.MustParsePrefix("2001:db8::/32"),
		netip.MustParsePrefix("2001:db8::1/128"),
		netip.MustParsePrefix("172.16.0.0/12"),
		netip.MustParsePrefix("192.0.2.9/32"),
	}
	if !slices.Equal(got, want) {
		t.Errorf("ParseCIDRs = %v, want %v", got, want)
	}
	if got, err := ParseCIDRs(nil); err != nil || len(got) != 0 {
		t.Errorf("ParseCIDRs(nil) = %v, %v", got, err)
	}
}

func TestParseCIDRsErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		entry string
		want  string // in the error text
	}{
		{"", "empty entry"},
		{"10.0.0.0/33", "10.0.0.0/33"},
		{"10.0.0/8", "10.0.0/8"},
		{"example.com", "example.com"},
		{"fe80::1%eth0", "zones"},
		{"::ffff:10.0.0.0/80", "at least /96"},
	}
	for _, tt := range tests {
		_, err := ParseCIDRs([]string{"10.0.0.0/8", tt.entry})
		if err == nil {
			t.Errorf("ParseCIDRs(%q) succeeded", tt.entry)
			continue
		}
		msg := err.Error()
		if !strings.Contains(msg, "trusted proxy 1") || !strings.Contains(msg, tt.want) {
			t.Errorf("ParseCIDRs(%q) error %q, want the index and %q", tt.entry, msg, tt.want)
		}
	}
}

func TestParseHeader(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want Header
	}{
		{"x-forwarded-for", HeaderXFF},
		{"X-Forwarded-For", HeaderXFF},
		{"forwarded", HeaderForwarded},
		{"FORWARDED", HeaderForwarded},
		{"x-real-ip", HeaderXRealIP},
		{"X-Real-IP", HeaderXRealIP},
	}
	for _, tt := range tests {
		got, err := ParseHeader(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("ParseHeader(%q) = %v, %v, want %v", tt.in, got, err, tt.want)
		}
		if again, _ := ParseHeader(got.String()); again != got {
			t.Errorf("ParseHeader(%v.String()) = %v", got, again)
		}
	}
	for _, bad := range []string{"", "xff", "x-forwarded-for ", "true-client-ip"} {
		_, err := ParseHeader(bad)
		if err == nil {
			t.Errorf("ParseHeader(%q) succeeded", bad)
			continue
		}
		for _, valid := range []string{"x-forwarded-for", "forwarded", "x-real-ip"} {
			if !strings.Contains(err.Error(), valid) {
				t.Errorf("ParseHeader(%q) error %q does not list %s", bad, err, valid)
			}
		}
	}
	if s := Header(7).String(); s != "Header(7)" {
		t.Errorf("Header(7).String() = %q", s)
	}
}
