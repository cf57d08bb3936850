package flood

import (
	"math"
	"net/netip"
	"strconv"
	"strings"
)

// ParseRate parses a rate such as "500/s", "30/m", "2/h" or "500" (per
// second) and returns events per second. "0" is a rate of zero, which
// Config.Rate reads as "no limit".
func ParseRate(s string) (float64, error) {
	num, unit, found := strings.Cut(strings.TrimSpace(s), "/")
	per := 1.0
	if found {
		switch unit {
		case "s":
		case "m":
			per = 60
		case "h":
			per = 3600
		default:
			return 0, configErrorf("rate %q: unit must be /s, /m or /h", s)
		}
	}
	v, err := strconv.ParseFloat(num, 64)
	if err != nil || v < 0 || math.IsInf(v, 0) || math.IsNaN(v) {
		return 0, configErrorf("rate %q: want a number of events, such as 500/s", s)
	}
	return v / per, nil
}

// sizeUnits are the suffixes ParseSize knows, longest first so that "KiB"
// is tried before "B".
var sizeUnits = []struct {
	suffix string
	mult   int64
}{
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30},
	{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9},
	{"B", 1},
}

// ParseSize parses a byte count such as "512", "64KiB", "2MiB" or "1MB".
// KiB, MiB and GiB are powers of 1024; KB, MB and GB powers of 1000.
func ParseSize(s string) (int64, error) {
	s = strings.TrimSpace(s)
	num, mult := s, int64(1)
	for _, u := range sizeUnits {
		if strings.HasSuffix(s, u.suffix) {
			num, mult = strings.TrimSuffix(s, u.suffix), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(strings.TrimSpace(num), 10, 64)
	if err != nil || n < 0 || n > math.MaxInt64/mult {
		return 0, configErrorf("size %q: want bytes, such as 512, 64KiB or 2MiB", s)
	}
	return n * mult, nil
}

// ParsePrefixes parses a comma-separated list of CIDRs; a bare address
// stands for itself alone (/32 or /128).
func ParsePrefixes(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if p, err := netip.ParsePrefix(f); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(f)
		if err != nil {
			return nil, configErrorf("%q is neither a CIDR nor an address", f)
		}
		out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
	}
	if len(out) == 0 {
		return nil, configErrorf("empty list of CIDRs")
	}
	return out, nil
}
