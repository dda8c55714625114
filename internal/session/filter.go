package session

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Filter selects sessions: what `list` shows and what `kick` and `msg`
// act on. The zero Filter matches every session.
type Filter struct {
	Users []string // user names or numeric uids
	// Idle selects sessions idle longer than this; sessions without a
	// terminal have no idle time and never match.
	Idle time.Duration
	From []netip.Prefix // the client address is in one of these
	// FromUnverified lets From match addresses the session's user could
	// have chosen (utmp records written through utempter, SSH_CONNECTION):
	// without it, From matches verified addresses only (HostVerified).
	FromUnverified bool
	Kinds          []Kind
}

// Empty reports whether f selects everything.
func (f Filter) Empty() bool {
	return len(f.Users) == 0 && f.Idle == 0 && len(f.From) == 0 && len(f.Kinds) == 0
}

// Match reports whether s passes every part of f.
func (f Filter) Match(s *Session) bool {
	if len(f.Users) > 0 && !slices.ContainsFunc(f.Users, func(u string) bool {
		// A number is a uid, never a name: a title or record naming the
		// "user" 1018 must not pass for uid 1018's session.
		if isUID(u) {
			return s.UID >= 0 && u == strconv.Itoa(s.UID)
		}
		return u == s.User
	}) {
		return false
	}
	if f.Idle > 0 && (s.IdleSeconds == nil || s.Idle <= f.Idle) {
		return false
	}
	if len(f.From) > 0 {
		if !s.HostVerified && !f.FromUnverified {
			return false
		}
		a, err := netip.ParseAddr(s.Addr)
		if err != nil {
			a, err = netip.ParseAddr(s.Host)
		}
		if err != nil || !slices.ContainsFunc(f.From, func(p netip.Prefix) bool { return p.Contains(a.Unmap()) }) {
			return false
		}
	}
	if len(f.Kinds) > 0 && !slices.Contains(f.Kinds, s.Kind) {
		return false
	}
	return true
}

// isUID: a plain decimal number.
func isUID(u string) bool {
	if u == "" || len(u) > 10 {
		return false
	}
	for i := 0; i < len(u); i++ {
		if u[i] < '0' || u[i] > '9' {
			return false
		}
	}
	return true
}

// Apply returns the sessions f matches.
func (f Filter) Apply(in []Session) []Session {
	out := make([]Session, 0, len(in))
	for i := range in {
		if f.Match(&in[i]) {
			out = append(out, in[i])
		}
	}
	return out
}

// ParseFrom parses an address ("192.0.2.7", "2001:db8::1") or a network
// ("10.0.0.0/8") for Filter.From.
func ParseFrom(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("bad address or network \"%s\": want an address like 192.0.2.7 or a network like 10.0.0.0/8", s)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("bad address or network \"%s\": want an address like 192.0.2.7 or a network like 10.0.0.0/8", s)
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// ParseKind checks a --kind value.
func ParseKind(s string) (Kind, error) {
	k := Kind(s)
	if slices.Contains(Kinds, k) {
		return k, nil
	}
	names := make([]string, len(Kinds))
	for i, k := range Kinds {
		names[i] = string(k)
	}
	return "", fmt.Errorf("unknown kind \"%s\": want one of %s", s, strings.Join(names, ", "))
}
