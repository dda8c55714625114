package session

import (
	"net/netip"
	"strings"
	"testing"
	"time"
)

func idle(d time.Duration) *Session {
	secs := int64(d / time.Second)
	return &Session{User: "alice", UID: 1001, Kind: SSH, TTY: "pts/0", Idle: d, IdleSeconds: &secs}
}

func TestFilterMatch(t *testing.T) {
	alice := &Session{User: "alice", UID: 1001, Kind: SSH, TTY: "pts/0", Addr: "192.0.2.10", Host: "ws1.example.org", HostSource: HostSocket, HostVerified: true}
	bob := &Session{User: "bob", UID: 1002, Kind: SSHNoTTY, Addr: "2001:db8::7", Host: "2001:db8::7", HostSource: HostSocket, HostVerified: true}
	hostOnly := &Session{User: "carol", UID: 1003, Kind: Local, Host: "198.51.100.9", HostSource: HostLogind, HostVerified: true}
	mapped := &Session{User: "dave", UID: 1004, Kind: SSH, Addr: "::ffff:192.0.2.77", HostSource: HostUtmp, HostVerified: true}
	named := &Session{User: "erin", UID: 1005, Kind: Pane, Host: "tmux(6702).%0", HostSource: HostUtmp}
	// utempter lets a user write any host into utmp; SSH_CONNECTION is the
	// user's own environment.
	forged := &Session{User: "mallory", UID: 1006, Kind: Local, TTY: "pts/4", Host: "203.0.113.66", Addr: "203.0.113.66", HostSource: HostUtmp}
	fromEnv := &Session{User: "mallory", UID: 1006, Kind: SSHNoTTY, Host: "203.0.113.67", Addr: "203.0.113.67", HostSource: HostEnv}
	numbered := &Session{User: "1001", UID: 1018, Kind: SSH}           // a user whose name is another's uid
	noUID := &Session{User: "1001", UID: -1, Kind: Local, Stale: true} // a stale record whose user is a number
	console := &Session{User: "root", UID: 0, Kind: Console, TTY: "tty1"}

	from := func(s ...string) []netip.Prefix {
		var out []netip.Prefix
		for _, x := range s {
			p, err := ParseFrom(x)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, p)
		}
		return out
	}
	tests := []struct {
		name string
		f    Filter
		s    *Session
		want bool
	}{
		{"empty filter", Filter{}, alice, true},
		{"empty filter, stale", Filter{}, noUID, true},

		{"user by name", Filter{Users: []string{"alice"}}, alice, true},
		{"user by uid", Filter{Users: []string{"1001"}}, alice, true},
		{"root by uid 0", Filter{Users: []string{"0"}}, console, true},
		{"one of several users", Filter{Users: []string{"bob", "alice"}}, alice, true},
		{"other user", Filter{Users: []string{"bob"}}, alice, false},
		{"other uid", Filter{Users: []string{"1002"}}, alice, false},
		{"uid -1 never matches by number", Filter{Users: []string{"-1"}}, noUID, false},
		// A number is a uid only (pkill -u takes names first; a title or
		// record naming "1001" must never pass for uid 1001's session).
		{"a number is never a name", Filter{Users: []string{"1001"}}, noUID, false},
		{"a number is never a name, live", Filter{Users: []string{"1001"}}, numbered, false},
		{"the uid of a numbered user", Filter{Users: []string{"1018"}}, numbered, true},
		{"user names are case sensitive", Filter{Users: []string{"Alice"}}, alice, false},
		{"no partial names", Filter{Users: []string{"ali"}}, alice, false},

		{"idle longer", Filter{Idle: time.Hour}, idle(2 * time.Hour), true},
		{"idle shorter", Filter{Idle: time.Hour}, idle(30 * time.Minute), false},
		{"idle exactly", Filter{Idle: time.Hour}, idle(time.Hour), false},
		{"idle zero", Filter{Idle: time.Hour}, idle(0), false},
		{"no idle time never matches", Filter{Idle: time.Second}, bob, false},
		{"no idle filter", Filter{}, bob, true},

		{"from address", Filter{From: from("192.0.2.10")}, alice, true},
		{"from other address", Filter{From: from("192.0.2.11")}, alice, false},
		{"from network", Filter{From: from("192.0.2.0/24")}, alice, true},
		{"from network, unmasked", Filter{From: from("192.0.2.99/24")}, alice, true},
		{"from other network", Filter{From: from("10.0.0.0/8")}, alice, false},
		{"from one of several", Filter{From: from("10.0.0.0/8", "192.0.2.0/24")}, alice, true},
		{"from IPv6 address", Filter{From: from("2001:db8::7")}, bob, true},
		{"from IPv6 network", Filter{From: from("2001:db8::/32")}, bob, true},
		{"from other IPv6 network", Filter{From: from("2001:db9::/32")}, bob, false},
		{"IPv4 network, IPv6 client", Filter{From: from("0.0.0.0/0")}, bob, false},
		{"IPv6 network, IPv4 client", Filter{From: from("::/0")}, alice, false},
		{"mapped client address", Filter{From: from("192.0.2.0/24")}, mapped, true},
		{"mapped filter address", Filter{From: from("::ffff:192.0.2.10")}, alice, true},
		{"host when no address", Filter{From: from("198.51.100.0/24")}, hostOnly, true},
		{"host not an address", Filter{From: from("0.0.0.0/0", "::/0")}, named, false},
		{"no address at all", Filter{From: from("0.0.0.0/0")}, console, false},
		{"address wins over host", Filter{From: from("ws1.example.org/32"[:0] + "192.0.2.10/32")}, alice, true},

		{"unverified utmp host", Filter{From: from("203.0.113.0/24")}, forged, false},
		{"unverified utmp host, asked for", Filter{From: from("203.0.113.0/24"), FromUnverified: true}, forged, true},
		{"SSH_CONNECTION", Filter{From: from("203.0.113.0/24")}, fromEnv, false},
		{"SSH_CONNECTION, asked for", Filter{From: from("203.0.113.0/24"), FromUnverified: true}, fromEnv, true},
		{"no address, asked for unverified", Filter{From: from("0.0.0.0/0"), FromUnverified: true}, console, false},

		{"kind", Filter{Kinds: []Kind{SSH}}, alice, true},
		{"one of several kinds", Filter{Kinds: []Kind{Console, SSHNoTTY}}, bob, true},
		{"other kind", Filter{Kinds: []Kind{Console}}, alice, false},

		{"all parts", Filter{Users: []string{"alice"}, From: from("192.0.2.0/24"), Kinds: []Kind{SSH}}, alice, true},
		{"all parts but one", Filter{Users: []string{"alice"}, From: from("192.0.2.0/24"), Kinds: []Kind{Pane}}, alice, false},
	}
	for _, tt := range tests {
		if got := tt.f.Match(tt.s); got != tt.want {
			t.Errorf("%s: Match = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestFilterEmptyAndApply(t *testing.T) {
	if !(Filter{}).Empty() {
		t.Error("Filter{}.Empty() = false")
	}
	for _, f := range []Filter{
		{Users: []string{"a"}}, {Idle: time.Second}, {From: []netip.Prefix{netip.MustParsePrefix("::/0")}},
		{Kinds: []Kind{SSH}},
	} {
		if f.Empty() {
			t.Errorf("%+v.Empty() = true", f)
		}
	}
	in := []Session{{ID: "a", User: "alice"}, {ID: "b", User: "bob"}, {ID: "c", User: "alice"}}
	got := Filter{Users: []string{"alice"}}.Apply(in)
	if len(got) != 2 || got[0].ID != "a" || got[1].ID != "c" {
		t.Errorf("Apply = %+v", got)
	}
	if got := (Filter{Users: []string{"nobody"}}).Apply(in); got == nil || len(got) != 0 {
		t.Errorf("Apply matching nothing = %#v, want an empty slice", got)
	}
}

func TestParseFrom(t *testing.T) {
	good := []struct{ in, want string }{
		{"192.0.2.7", "192.0.2.7/32"},
		{"10.0.0.0/8", "10.0.0.0/8"},
		{"10.1.2.3/8", "10.0.0.0/8"},
		{"0.0.0.0/0", "0.0.0.0/0"},
		{"2001:db8::1", "2001:db8::1/128"},
		{"2001:db8::1/32", "2001:db8::/32"},
		{"::ffff:192.0.2.7", "192.0.2.7/32"},
		{"::/0", "::/0"},
	}
	for _, tt := range good {
		got, err := ParseFrom(tt.in)
		if err != nil || got != netip.MustParsePrefix(tt.want) {
			t.Errorf("ParseFrom(%q) = %v, %v; want %s", tt.in, got, err, tt.want)
		}
	}
	for _, in := range []string{"", "example.org", "10.0.0.0/33", "10.0.0.0/", "/8", "10.0.0", "10.0.0.0/-1",
		"2001:db8::/129", "192.0.2.7:22", "[2001:db8::1]", "fe80::1%eth0/64", "10.0.0.0/8/8", " 10.0.0.1"} {
		p, err := ParseFrom(in)
		if err == nil {
			t.Errorf("ParseFrom(%q) = %v, want an error", in, p)
			continue
		}
		if !strings.Contains(err.Error(), "bad address or network") || !strings.Contains(err.Error(), "10.0.0.0/8") {
			t.Errorf("ParseFrom(%q) error %q does not say what is wanted", in, err)
		}
	}
}

func TestParseKind(t *testing.T) {
	for _, k := range Kinds {
		got, err := ParseKind(string(k))
		if err != nil || got != k {
			t.Errorf("ParseKind(%q) = %q, %v", k, got, err)
		}
	}
	for _, in := range []string{"", "SSH", "tmux", "ssh ", "notty", "ssh-notty,ssh"} {
		got, err := ParseKind(in)
		if err == nil {
			t.Errorf("ParseKind(%q) = %q, want an error", in, got)
			continue
		}
		if !strings.Contains(err.Error(), "ssh, ssh-notty, console, pane, mosh, local") {
			t.Errorf("ParseKind(%q) error %q does not list the kinds", in, err)
		}
	}
}
