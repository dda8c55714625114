package cli

import (
	"github.com/sshkick/sshkick/internal/engine"

	"strings"
	"testing"
	"time"
)

func TestParseDuration(t *testing.T) {
	tests := []struct {
		in      string
		want    time.Duration
		wantErr string // substring of the error; "" for success
	}{
		{"90s", 90 * time.Second, ""},
		{"15m", 15 * time.Minute, ""},
		{"1h30m", 90 * time.Minute, ""},
		{"2h", 2 * time.Hour, ""},
		{"1.5h", 90 * time.Minute, ""},
		{"1d", 24 * time.Hour, ""},
		{"2d12h", 60 * time.Hour, ""},
		{"1d30m", 24*time.Hour + 30*time.Minute, ""},
		{"0s", 0, ""},
		{"0d", 0, ""},
		{"30", 0, "add a unit, like 30s, 30m or 30h"},
		{"0", 0, ""},
		{"1.5", 0, "add a unit"},
		{"1d30", 0, "add a unit"},
		{"soon", 0, "use a number and a unit"},
		{"-5m", 0, "must not be negative"},
		{"1d-5m", 0, "must not be negative"},
		{"-1d", 0, "use a number and a unit"},
		{"1x", 0, "use a number and a unit"},
		{"", 0, "unit"},
		{"d", 0, "unit"},
		{"1.5d", 0, "unit"},
		{"1d1d", 0, "unit"},
		{"1dh", 0, "unit"},
		{"h", 0, "unit"},
		{"99999d", 0, "unit"},     // more days than uint16
		{"3000000h", 0, "unit"},   // beyond time.Duration
		{"65535d2000000h", 0, ""}, // overflow: checked below
	}
	for _, tc := range tests {
		got, err := parseDuration(tc.in)
		if tc.in == "65535d2000000h" {
			// 65535 days plus 2,000,000 hours overflows time.Duration:
			// it must be an error, never a negative duration (which
			// --idle would treat as no selector at all).
			if err == nil {
				t.Errorf("parseDuration(%q) = %v, want an error", tc.in, got)
			}
			continue
		}
		if tc.wantErr == "" {
			if err != nil || got != tc.want {
				t.Errorf("parseDuration(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
			}
			continue
		}
		if err == nil {
			t.Errorf("parseDuration(%q) = %v, want an error with %q", tc.in, got, tc.wantErr)
			continue
		}
		if !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), "unit") {
			t.Errorf("parseDuration(%q) error %q, want it to contain %q and mention a unit", tc.in, err, tc.wantErr)
		}
		if !strings.Contains(err.Error(), "bad duration") {
			t.Errorf("parseDuration(%q) error %q does not say what was wrong", tc.in, err)
		}
	}
}

func TestParseDurationNeverNegative(t *testing.T) {
	for _, s := range []string{"65535d2562047h", "65535d9223372036s", "106751d23h", "65535d", "1d2562047h"} {
		d, err := parseDuration(s)
		if err == nil && d < 0 {
			t.Errorf("parseDuration(%q) = %v: negative", s, d)
		}
	}
}

func TestShortDuration(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want string
	}{
		{0, "0s"},
		{999 * time.Millisecond, "0s"},
		{42 * time.Second, "42s"},
		{59 * time.Second, "59s"},
		{time.Minute, "1m"},
		{7*time.Minute + 59*time.Second, "7m"},
		{59*time.Minute + 59*time.Second, "59m"},
		{time.Hour, "1h00m"},
		{time.Hour + 5*time.Minute, "1h05m"},
		{23*time.Hour + 59*time.Minute, "23h59m"},
		{24 * time.Hour, "1d00h"},
		{3*24*time.Hour + 4*time.Hour + 59*time.Minute, "3d04h"},
		{400 * 24 * time.Hour, "400d00h"},
	}
	for _, tc := range tests {
		if got := shortDuration(tc.d); got != tc.want {
			t.Errorf("shortDuration(%v) = %q, want %q", tc.d, got, tc.want)
		}
	}
}

func TestHumanDuration(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want string
	}{
		{0, "0 seconds"},
		{time.Second, "1 second"},
		{1400 * time.Millisecond, "1 second"},
		{1500 * time.Millisecond, "2 seconds"},
		{10 * time.Second, "10 seconds"},
		{59 * time.Second, "59 seconds"},
		{time.Minute, "1 minute"},
		{5 * time.Minute, "5 minutes"},
		{61 * time.Second, "1m1s"},
		{90 * time.Minute, "90 minutes"},
		{time.Hour, "1 hour"},
		{2 * time.Hour, "2 hours"},
		{48 * time.Hour, "48 hours"},
		{time.Hour + time.Second, "1h0m1s"},
	}
	for _, tc := range tests {
		if got := engine.HumanDuration(tc.d); got != tc.want {
			t.Errorf("engine.HumanDuration(%v) = %q, want %q", tc.d, got, tc.want)
		}
	}
}

func TestLoginString(t *testing.T) {
	now := time.Date(2025, 6, 15, 17, 30, 0, 0, time.Local)
	tests := []struct {
		name string
		t    time.Time
		want string
	}{
		{"zero", time.Time{}, "-"},
		{"today", time.Date(2025, 6, 15, 9, 5, 0, 0, time.Local), "09:05"},
		{"today, just after midnight", time.Date(2025, 6, 15, 0, 1, 0, 0, time.Local), "00:01"},
		{"today, in UTC", time.Date(2025, 6, 15, 12, 0, 0, 0, time.Local).UTC(), "12:00"},
		{"yesterday", time.Date(2025, 6, 14, 23, 59, 0, 0, time.Local), "Jun14"},
		{"same day last year", time.Date(2024, 6, 15, 9, 5, 0, 0, time.Local), "2024-06-15"},
		{"two months ago", time.Date(2025, 4, 2, 8, 0, 0, 0, time.Local), "Apr02"},
		{"long ago", time.Date(2019, 1, 2, 8, 0, 0, 0, time.Local), "2019-01-02"},
	}
	for _, tc := range tests {
		if got := loginString(tc.t, now); got != tc.want {
			t.Errorf("%s: loginString(%v) = %q, want %q", tc.name, tc.t, got, tc.want)
		}
	}
	// Across new year: 31 December is another day.
	ny := time.Date(2026, 1, 1, 0, 30, 0, 0, time.Local)
	if got := loginString(time.Date(2025, 12, 31, 23, 0, 0, 0, time.Local), ny); got != "Dec31" {
		t.Errorf("across new year: %q, want Dec31", got)
	}
}
