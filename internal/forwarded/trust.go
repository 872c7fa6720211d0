package forwarded

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
)

// Trust is the set of peers whose forwarding headers (and PROXY protocol
// headers) are believed: server.trusted_proxies. The zero value and a nil
// *Trust trust nobody. A Trust is immutable, so safe for concurrent use.
type Trust struct {
	v4, v6 []netip.Prefix // apart, so that Contains skips the other family
}

// Private is what the keyword "private" stands for in ParseTrust: the
// private networks of RFC 1918 and RFC 4193 and the loopback networks,
// the places a reverse proxy on the same host or network usually is.
var Private = []string{
	"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", // RFC 1918
	"fc00::/7",    // RFC 4193 unique local addresses
	"127.0.0.0/8", // loopback
	"::1/128",
}

// ParseTrust parses trusted proxy entries: CIDRs ("10.0.0.0/8",
// "fd00::/8"), single addresses ("127.0.0.1", "::1"), or the keyword
// "private" (any case: the networks of Private). Spaces around an entry
// are ignored. A CIDR with host bits set ("10.1.2.3/8") stands for its
// network (10.0.0.0/8), and an IPv4-mapped entry ("::ffff:10.0.0.1") for
// its IPv4 form, as peers are compared unmapped. An address with a zone
// ("fe80::1%eth0") is refused: a zone names an interface of this host,
// not a peer. Errors name the bad entry.
//
// No entries (nil or empty) is a valid Trust that trusts nobody.
func ParseTrust(entries []string) (*Trust, error) {
	t := &Trust{}
	var errs []error
	for i, e := range entries {
		s := strings.TrimSpace(e)
		if strings.EqualFold(s, "private") {
			for _, p := range Private {
				t.add(netip.MustParsePrefix(p))
			}
			continue
		}
		p, err := parseEntry(s)
		if err != nil {
			errs = append(errs, fmt.Errorf("entry %d %q: %w", i+1, e, err))
			continue
		}
		t.add(p)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return t, nil
}

// MustParseTrust is ParseTrust for fixed entries; it panics on an error.
func MustParseTrust(entries ...string) *Trust {
	t, err := ParseTrust(entries)
	if err != nil {
		panic(err)
	}
	return t
}

func parseEntry(s string) (netip.Prefix, error) {
	if s == "" {
		return netip.Prefix{}, errors.New("empty entry")
	}
	if strings.Contains(s, "%") {
		return netip.Prefix{}, errors.New("an address with a zone cannot be a peer")
	}
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, errors.New("not a CIDR (like 10.0.0.0/8 or fd00::/8)")
		}
		if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, errors.New(`not an IP address, a CIDR or "private"`)
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

func (t *Trust) add(p netip.Prefix) {
	if p.Addr().Is4() {
		t.v4 = append(t.v4, p)
	} else {
		t.v6 = append(t.v6, p)
	}
}

// Contains reports whether ip is a trusted peer. An IPv4-mapped IPv6
// address is taken as its IPv4 form and a zone is ignored. A nil *Trust
// contains nothing.
func (t *Trust) Contains(ip netip.Addr) bool {
	if t == nil || !ip.IsValid() {
		return false
	}
	ip = ip.Unmap().WithZone("")
	list := t.v6
	if ip.Is4() {
		list = t.v4
	}
	for _, p := range list {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// Empty reports whether t trusts nobody.
func (t *Trust) Empty() bool { return t == nil || len(t.v4)+len(t.v6) == 0 }

// String lists t's networks, for logs.
func (t *Trust) String() string {
	if t.Empty() {
		return "none"
	}
	var b strings.Builder
	for i, p := range append(append([]netip.Prefix(nil), t.v4...), t.v6...) {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(p.String())
	}
	return b.String()
}
