package config

import (
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"
	"time"
)

// ParseDuration parses a duration such as "30s", "5m" or "1h30m", as
// time.ParseDuration does. Negative durations are refused; "0" is allowed.
func ParseDuration(s string) (Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("invalid duration %q (use a number with a unit such as 30s or 5m)", s)
	}
	if d < 0 {
		return 0, fmt.Errorf("negative duration %q", s)
	}
	return Duration(d), nil
}

// String formats d without zero trailing units: "5m" rather than "5m0s".
func (d Duration) String() string {
	s := time.Duration(d).String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler using ParseDuration.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := ParseDuration(string(b))
	if err == nil {
		*d = v
	}
	return err
}

// Byte counts of the Size units.
const (
	KiB Size = 1 << 10
	MiB Size = 1 << 20
	GiB Size = 1 << 30
)

// sizeUnits lists the accepted Size suffixes; "B" comes last because the
// others end with it.
var sizeUnits = []struct {
	name string
	mult int64
}{
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30},
	{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9},
	{"B", 1},
}

// maxNumberLen bounds the digits ParseSize will look at.
const maxNumberLen = 64

// ParseSize parses a byte count: a plain number of bytes ("512"), or a
// number followed by B, KiB, MiB, GiB (powers of 1024) or KB, MB, GB
// (powers of 1000). Units are case-sensitive. A fraction is allowed when
// it comes to a whole number of bytes, so "1.5KiB" is 1536.
func ParseSize(s string) (Size, error) {
	num, mult := s, int64(1)
	for _, u := range sizeUnits {
		if strings.HasSuffix(s, u.name) {
			num, mult = strings.TrimSuffix(s, u.name), u.mult
			break
		}
	}
	if strings.HasPrefix(num, "-") {
		return 0, fmt.Errorf("negative size %q", s)
	}
	if !isDecimal(num) || len(num) > maxNumberLen {
		return 0, fmt.Errorf("invalid size %q (use a number of bytes or a unit such as 64KiB or 1MiB)", s)
	}

	// Scale the digits exactly: "1.5" with unit KiB is 15 * 1024 / 10.
	whole, frac, _ := strings.Cut(num, ".")
	n, _ := new(big.Int).SetString(whole+frac, 10)
	n.Mul(n, big.NewInt(mult))
	scale := new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(len(frac))), nil)
	q, r := n.QuoRem(n, scale, new(big.Int))
	if r.Sign() != 0 {
		return 0, fmt.Errorf("invalid size %q (not a whole number of bytes)", s)
	}
	if !q.IsInt64() {
		return 0, fmt.Errorf("size %q is too large", s)
	}
	return Size(q.Int64()), nil
}

// isDecimal reports whether s is digits with at most one decimal point and
// at least one digit.
func isDecimal(s string) bool {
	digits, dots := 0, 0
	for i := 0; i < len(s); i++ {
		switch {
		case s[i] >= '0' && s[i] <= '9':
			digits++
		case s[i] == '.':
			dots++
		default:
			return false
		}
	}
	return digits > 0 && dots <= 1
}

// String formats z in the largest binary unit that divides it exactly,
// such as "1MiB", or in bytes ("1000B"). Zero is "0".
func (z Size) String() string {
	switch {
	case z == 0:
		return "0"
	case z%GiB == 0:
		return strconv.FormatInt(int64(z/GiB), 10) + "GiB"
	case z%MiB == 0:
		return strconv.FormatInt(int64(z/MiB), 10) + "MiB"
	case z%KiB == 0:
		return strconv.FormatInt(int64(z/KiB), 10) + "KiB"
	}
	return strconv.FormatInt(int64(z), 10) + "B"
}

// MarshalText implements encoding.TextMarshaler.
func (z Size) MarshalText() ([]byte, error) { return []byte(z.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler using ParseSize.
func (z *Size) UnmarshalText(b []byte) error {
	v, err := ParseSize(string(b))
	if err == nil {
		*z = v
	}
	return err
}

// ParseRate parses a rate such as "20/s", "100/m", "5/h" or "0.5/s".
// "0" on its own turns the rate off.
func ParseRate(s string) (Rate, error) {
	if s == "0" {
		return 0, nil
	}
	num, unit, ok := strings.Cut(s, "/")
	if strings.HasPrefix(num, "-") {
		return 0, fmt.Errorf("negative rate %q", s)
	}
	per := map[string]float64{"s": 1, "m": 60, "h": 3600}[unit]
	if !ok || per == 0 {
		return 0, fmt.Errorf("invalid rate %q (use a count per unit such as 20/s, 100/m or 5/h)", s)
	}
	n, err := parseNumber(num)
	if err != nil {
		return 0, fmt.Errorf("invalid rate %q (%v)", s, err)
	}
	if n > 0 && n/per == 0 {
		return 0, fmt.Errorf("rate %q is too small (use 0 to turn it off)", s)
	}
	return Rate(n / per), nil
}

// String formats r per second, such as "20/s", or "0" when off.
func (r Rate) String() string {
	if r == 0 {
		return "0"
	}
	return strconv.FormatFloat(float64(r), 'g', -1, 64) + "/s"
}

// MarshalText implements encoding.TextMarshaler.
func (r Rate) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler using ParseRate.
func (r *Rate) UnmarshalText(b []byte) error {
	v, err := ParseRate(string(b))
	if err == nil {
		*r = v
	}
	return err
}

// ParsePercent parses a share such as "10%" or "12.5%" into 0.10 or 0.125.
// "0" is allowed; more than "100%" is refused.
func ParsePercent(s string) (Percent, error) {
	if s == "0" {
		return 0, nil
	}
	num, ok := strings.CutSuffix(s, "%")
	if strings.HasPrefix(num, "-") {
		return 0, fmt.Errorf("negative percentage %q", s)
	}
	if !ok {
		return 0, fmt.Errorf("invalid percentage %q (use a number with %%, such as 10%%)", s)
	}
	n, err := parseNumber(num)
	if err != nil {
		return 0, fmt.Errorf("invalid percentage %q (%v)", s, err)
	}
	if n > 100 {
		return 0, fmt.Errorf("percentage %q is over 100%%", s)
	}
	return Percent(n / 100), nil
}

// String formats p as a percentage such as "10%", or "0".
func (p Percent) String() string {
	if p == 0 {
		return "0"
	}
	return strconv.FormatFloat(float64(p)*100, 'g', -1, 64) + "%"
}

// MarshalText implements encoding.TextMarshaler.
func (p Percent) MarshalText() ([]byte, error) { return []byte(p.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler using ParsePercent.
func (p *Percent) UnmarshalText(b []byte) error {
	v, err := ParsePercent(string(b))
	if err == nil {
		*p = v
	}
	return err
}

// parseNumber parses a finite, non-negative decimal number, with an
// optional exponent ("1e3"). Signs, hex, Inf and NaN are refused.
func parseNumber(s string) (float64, error) {
	if s == "" || !(s[0] >= '0' && s[0] <= '9' || s[0] == '.') ||
		strings.ContainsAny(s, "_xXpPnN") {
		return 0, fmt.Errorf("not a number")
	}
	n, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsInf(n, 0) {
		return 0, fmt.Errorf("not a finite number")
	}
	return n, nil
}
