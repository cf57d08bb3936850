package config

import (
	"encoding"
	"strings"
	"testing"
	"time"
)

func TestParseDuration(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		in      string
		want    Duration
		str     string
		wantErr string
	}{
		{name: "seconds", in: "30s", want: Duration(30 * time.Second), str: "30s"},
		{name: "minutes", in: "5m", want: Duration(5 * time.Minute), str: "5m"},
		{name: "hours", in: "2h", want: Duration(2 * time.Hour), str: "2h"},
		{name: "mixed", in: "1h30m", want: Duration(90 * time.Minute), str: "1h30m"},
		{name: "hour and seconds", in: "1h0m5s", want: Duration(time.Hour + 5*time.Second), str: "1h0m5s"},
		{name: "milliseconds", in: "250ms", want: Duration(250 * time.Millisecond), str: "250ms"},
		{name: "bare zero", in: "0", want: 0, str: "0s"},
		{name: "words", in: "5 minutes", wantErr: `invalid duration "5 minutes" (use a number with a unit such as 30s or 5m)`},
		{name: "no unit", in: "300", wantErr: `invalid duration "300"`},
		{name: "empty", in: "", wantErr: `invalid duration ""`},
		{name: "negative", in: "-5s", wantErr: `negative duration "-5s"`},
		{name: "overflow", in: "999999999h", wantErr: `invalid duration "999999999h"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := ParseDuration(tt.in)
			checkParse(t, got, err, tt.want, tt.wantErr)
			if err == nil && got.String() != tt.str {
				t.Errorf("String() = %q, want %q", got.String(), tt.str)
			}
		})
	}
}

func TestParseSize(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		in      string
		want    Size
		str     string
		wantErr string
	}{
		{name: "bytes", in: "512", want: 512, str: "512B"},
		{name: "bytes with unit", in: "512B", want: 512, str: "512B"},
		{name: "kibibytes", in: "64KiB", want: 64 << 10, str: "64KiB"},
		{name: "mebibyte", in: "1MiB", want: 1 << 20, str: "1MiB"},
		{name: "gibibytes", in: "2GiB", want: 2 << 30, str: "2GiB"},
		{name: "kilobyte", in: "1KB", want: 1000, str: "1000B"},
		{name: "megabyte", in: "1MB", want: 1e6, str: "1000000B"},
		{name: "gigabyte", in: "1GB", want: 1e9, str: "1000000000B"},
		{name: "largest exact unit", in: "2048KiB", want: 2 << 20, str: "2MiB"},
		{name: "whole fraction", in: "1.5KiB", want: 1536, str: "1536B"},
		{name: "zero", in: "0", want: 0, str: "0"},
		{name: "largest", in: "9223372036854775807", want: 1<<63 - 1, str: "9223372036854775807B"},
		{name: "lowercase unit", in: "1mib", wantErr: `invalid size "1mib"`},
		{name: "space", in: "1 MiB", wantErr: `invalid size "1 MiB"`},
		{name: "unit only", in: "MiB", wantErr: `invalid size "MiB"`},
		{name: "empty", in: "", wantErr: `invalid size ""`},
		{name: "negative", in: "-1KiB", wantErr: `negative size "-1KiB"`},
		{name: "part of a byte", in: "0.5B", wantErr: `invalid size "0.5B" (not a whole number of bytes)`},
		{name: "part of a byte in KiB", in: "1.0001KiB", wantErr: "not a whole number of bytes"},
		{name: "two points", in: "1.2.3", wantErr: `invalid size "1.2.3"`},
		{name: "overflow", in: "9223372036854775808", wantErr: `size "9223372036854775808" is too large`},
		{name: "overflow with unit", in: "9000000000GiB", wantErr: "is too large"},
		{name: "exponent", in: "1e3", wantErr: `invalid size "1e3"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := ParseSize(tt.in)
			checkParse(t, got, err, tt.want, tt.wantErr)
			if err == nil && got.String() != tt.str {
				t.Errorf("String() = %q, want %q", got.String(), tt.str)
			}
		})
	}
}

func TestParseRate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		in      string
		want    Rate
		str     string
		wantErr string
	}{
		{name: "per second", in: "20/s", want: 20, str: "20/s"},
		{name: "per minute", in: "120/m", want: 2, str: "2/s"},
		{name: "per hour", in: "5/h", want: Rate(5.0 / 3600), str: "0.001388888888888889/s"},
		{name: "fraction", in: "0.5/s", want: 0.5, str: "0.5/s"},
		{name: "off", in: "0", want: 0, str: "0"},
		{name: "zero per second", in: "0/s", want: 0, str: "0"},
		{name: "exponent", in: "1e3/s", want: 1000, str: "1000/s"},
		{name: "no unit", in: "20", wantErr: `invalid rate "20" (use a count per unit such as 20/s, 100/m or 5/h)`},
		{name: "unknown unit", in: "20/d", wantErr: `invalid rate "20/d"`},
		{name: "no count", in: "/s", wantErr: `invalid rate "/s" (not a number)`},
		{name: "negative", in: "-1/s", wantErr: `negative rate "-1/s"`},
		{name: "plus sign", in: "+1/s", wantErr: `invalid rate "+1/s"`},
		{name: "infinite", in: "1e999/s", wantErr: "not a finite number"},
		{name: "nan", in: "NaN/s", wantErr: `invalid rate "NaN/s"`},
		{name: "hex", in: "0x10/s", wantErr: `invalid rate "0x10/s"`},
		{name: "too small", in: "1e-323/h", wantErr: "too small"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := ParseRate(tt.in)
			checkParse(t, got, err, tt.want, tt.wantErr)
			if err == nil && got.String() != tt.str {
				t.Errorf("String() = %q, want %q", got.String(), tt.str)
			}
		})
	}
}

func TestParsePercent(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		in      string
		want    Percent
		str     string
		wantErr string
	}{
		{name: "ten", in: "10%", want: 0.10, str: "10%"},
		{name: "fraction", in: "12.5%", want: 0.125, str: "12.5%"},
		{name: "all", in: "100%", want: 1, str: "100%"},
		{name: "zero", in: "0", want: 0, str: "0"},
		{name: "zero percent", in: "0%", want: 0, str: "0"},
		{name: "no sign", in: "10", wantErr: `invalid percentage "10" (use a number with %, such as 10%)`},
		{name: "share", in: "0.1", wantErr: `invalid percentage "0.1"`},
		{name: "negative", in: "-5%", wantErr: `negative percentage "-5%"`},
		{name: "over 100", in: "101%", wantErr: `percentage "101%" is over 100%`},
		{name: "sign only", in: "%", wantErr: `invalid percentage "%" (not a number)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := ParsePercent(tt.in)
			checkParse(t, got, err, tt.want, tt.wantErr)
			if err == nil && got.String() != tt.str {
				t.Errorf("String() = %q, want %q", got.String(), tt.str)
			}
		})
	}
}

// checkParse compares a parser's result with the expected value, or its
// error with the expected text, which must appear in the message.
func checkParse[T comparable](t *testing.T, got T, err error, want T, wantErr string) {
	t.Helper()
	if wantErr != "" {
		if err == nil || !strings.Contains(err.Error(), wantErr) {
			t.Fatalf("got (%v, %v), want error containing %q", got, err, wantErr)
		}
		return
	}
	if err != nil || got != want {
		t.Fatalf("got (%v, %v), want %v", got, err, want)
	}
}

func TestTextRoundTrip(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		val  interface {
			encoding.TextMarshaler
			encoding.TextUnmarshaler
		}
		in   string
		want string
	}{
		{name: "duration", val: new(Duration), in: "90s", want: "1m30s"},
		{name: "size", val: new(Size), in: "1024KiB", want: "1MiB"},
		{name: "rate", val: new(Rate), in: "60/m", want: "1/s"},
		{name: "percent", val: new(Percent), in: "25%", want: "25%"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if err := tt.val.UnmarshalText([]byte(tt.in)); err != nil {
				t.Fatalf("UnmarshalText(%q): %v", tt.in, err)
			}
			got, err := tt.val.MarshalText()
			if err != nil || string(got) != tt.want {
				t.Fatalf("MarshalText() = %q, %v; want %q", got, err, tt.want)
			}
			if err := tt.val.UnmarshalText([]byte("bad")); err == nil {
				t.Fatal(`UnmarshalText("bad") succeeded`)
			}
			if again, _ := tt.val.MarshalText(); string(again) != tt.want {
				t.Errorf("failed UnmarshalText changed the value to %q", again)
			}
		})
	}
}
