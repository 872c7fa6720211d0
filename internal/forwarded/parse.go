package forwarded

import (
	"net/netip"
	"strconv"
	"strings"
)

// maxHops caps the list elements Resolve examines, from the right: a
// proxy chain is a few hops, and a hostile list should cost little.
const maxHops = 32

// parseNode parses one address of a list: an X-Forwarded-For element, or
// the node of a Forwarded for= (RFC 7239 section 6). Accepted: "192.0.2.1",
// "192.0.2.1:4711", "[2001:db8::1]", "[2001:db8::1]:4711", and a bare
// "2001:db8::1" (proxies write it so, though RFC 7239 wants brackets). An
// obfuscated port ("[2001:db8::1]:_p1") gives port 0. Refused (ok false):
// "unknown", obfuscated identifiers ("_hidden"), zones, 0.0.0.0 and ::,
// anything else.
// An IPv4-mapped address comes back as IPv4. It does not allocate.
func parseNode(s string) (a netip.Addr, port uint16, ok bool) {
	if s == "" || s[0] == '_' || strings.IndexByte(s, '%') >= 0 {
		return netip.Addr{}, 0, false
	}
	host, portStr := s, ""
	if s[0] == '[' {
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return netip.Addr{}, 0, false
		}
		host, portStr = s[1:end], s[end+1:]
		if portStr != "" {
			if portStr[0] != ':' {
				return netip.Addr{}, 0, false
			}
			portStr = portStr[1:]
			if portStr == "" {
				return netip.Addr{}, 0, false
			}
		}
		if strings.IndexByte(host, ':') < 0 {
			return netip.Addr{}, 0, false // brackets are for IPv6 only
		}
	} else {
		// The shape decides, so that no parse fails on a valid node (a
		// failed netip parse allocates its error).
		switch strings.Count(s, ":") {
		case 0: // IPv4
		case 1: // IPv4:port
			i := strings.IndexByte(s, ':')
			host, portStr = s[:i], s[i+1:]
			if portStr == "" {
				return netip.Addr{}, 0, false
			}
		default: // bare IPv6, no port
		}
	}
	a, err := netip.ParseAddr(host)
	if err != nil || a.Unmap().IsUnspecified() { // 0.0.0.0 or :: is no one
		return netip.Addr{}, 0, false
	}
	if portStr != "" {
		if port, ok = parseNodePort(portStr); !ok {
			return netip.Addr{}, 0, false
		}
	}
	return a.Unmap(), port, true
}

// parseNodePort parses a node-port: 1 to 5 digits up to 65535, or an
// obfuscated port ("_" then ALPHA / DIGIT / "." / "_" / "-"), which is 0.
func parseNodePort(s string) (uint16, bool) {
	if s[0] == '_' {
		return 0, obfuscated(s)
	}
	v, ok := parsePort(s)
	return uint16(v), ok
}

// parsePort parses 1 to 5 ASCII digits whose value is at most 65535.
func parsePort(s string) (int, bool) {
	if len(s) == 0 || len(s) > 5 {
		return 0, false
	}
	v := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + int(c-'0')
	}
	return v, v <= 65535
}

// portString is s as a port for SERVER_PORT: digits only, 1 to 65535,
// written without leading zeros; ok false otherwise.
func portString(s string) (string, bool) {
	v, ok := parsePort(s)
	if !ok || v == 0 {
		return "", false
	}
	if s[0] == '0' {
		return strconv.Itoa(v), true // rare: "0443"
	}
	return s, true
}

// obfuscated reports whether s is an obfuscated identifier of RFC 7239
// section 6.3: "_" followed by ALPHA / DIGIT / "." / "_" / "-".
func obfuscated(s string) bool {
	if len(s) < 2 || s[0] != '_' {
		return false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if !(isAlnum(c) || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

func isAlnum(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}

// isTchar reports whether c is a token character (RFC 9110 section 5.6.2).
func isTchar(c byte) bool {
	if isAlnum(c) {
		return true
	}
	switch c {
	case '!', '#', '$', '%', '&', '\'', '*', '+', '-', '.', '^', '_', '`', '|', '~':
		return true
	}
	return false
}

// isValueChar reports whether c may be in an unquoted Forwarded value: a
// token character, or ":", "[" and "]", which RFC 7239 wants quoted but
// proxies (nginx's "for=$remote_addr") write bare. A value is meaningful
// only to parseNode, parseScheme and hostPort, which validate it.
func isValueChar(c byte) bool {
	return isTchar(c) || c == ':' || c == '[' || c == ']'
}

func isOWS(c byte) bool { return c == ' ' || c == '\t' }

func skipOWS(s string, i int) int {
	for i < len(s) && isOWS(s[i]) {
		i++
	}
	return i
}

func trimOWS(s string) string {
	for len(s) > 0 && isOWS(s[0]) {
		s = s[1:]
	}
	for len(s) > 0 && isOWS(s[len(s)-1]) {
		s = s[:len(s)-1]
	}
	return s
}

// parseScheme is "http" or "https" for s in any case, else "".
func parseScheme(s string) string {
	switch {
	case strings.EqualFold(s, "https"):
		return "https"
	case strings.EqualFold(s, "http"):
		return "http"
	}
	return ""
}

// hostPort validates s as a Host header value and returns its port (""
// if it has none). Valid: a name of letters, digits, "-", "." and "_"
// (an IPv4 address is one), or a bracketed IPv6 address without a zone,
// then optionally ":" and a port of 1 to 5 digits, 1 to 65535. So no
// spaces, slashes, control characters, "@", "%" or anything else a URL
// or a header could be bent with.
func hostPort(s string) (port string, ok bool) {
	if s == "" || len(s) > 261 { // a 253-byte name, ":" and 5 digits, with room
		return "", false
	}
	name := s
	if s[0] == '[' {
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return "", false
		}
		a, err := netip.ParseAddr(s[1:end])
		if err != nil || !a.Is6() || a.Zone() != "" {
			return "", false
		}
		name, port = "", s[end+1:]
		if port != "" && port[0] != ':' {
			return "", false
		}
	} else if i := strings.IndexByte(s, ':'); i >= 0 {
		name, port = s[:i], s[i:]
		if name == "" {
			return "", false
		}
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; !(isAlnum(c) || c == '-' || c == '.' || c == '_') {
			return "", false
		}
	}
	if port == "" {
		return "", true
	}
	return portString(port[1:])
}

// backward yields the comma-separated elements of a header's values from
// the right: the last value's last element first. Empty elements are
// skipped (RFC 9110 section 5.6.1), elements are trimmed of spaces.
type backward struct {
	vals []string
	i    int    // values not yet started: vals[:i]
	s    string // unread part of vals[i]
}

func newBackward(vals []string) backward { return backward{vals: vals, i: len(vals)} }

func (b *backward) next() (string, bool) {
	for {
		if b.s == "" {
			if b.i == 0 {
				return "", false
			}
			b.i--
			b.s = b.vals[b.i]
			continue
		}
		el := b.s
		if k := strings.LastIndexByte(b.s, ','); k >= 0 {
			el, b.s = b.s[k+1:], b.s[:k]
		} else {
			b.s = ""
		}
		if el = trimOWS(el); el != "" {
			return el, true
		}
	}
}

// last is the rightmost element of a header's values, "" if none.
func last(vals []string) string {
	b := newBackward(vals)
	el, _ := b.next()
	return el
}

// element is one element of a Forwarded header: the raw values of its
// for=, proto= and host= parameters. bad marks an element that cannot be
// used: a syntax error, a parameter given twice, or a for=, proto= or
// host= whose quoted value has a quoted-pair (none of them can hold a
// backslash, so it is not worth unescaping).
type element struct {
	forv, proto, host string
	hasFor            bool
	bad               bool
}

// elements holds the last maxHops elements of a Forwarded header, in a
// ring: the walk looks at no more than those.
type elements struct {
	ring [maxHops]element
	n    int // elements seen, all told
}

func (l *elements) push(e element) {
	l.ring[l.n%maxHops] = e
	l.n++
}

// at returns element i, l.n-maxHops <= i < l.n.
func (l *elements) at(i int) *element { return &l.ring[i%maxHops] }

// parseForwarded parses the Forwarded header values vals (RFC 7239
// section 4) into l, in order. Each value (header line) is parsed on its
// own. A syntax error makes the rest of its line one bad element: after
// an unbalanced quote, nothing in that line can be told apart, and a bad
// element stops the walk, so garbage can hide a client but never name
// one. Parameter names are case-insensitive; spaces are allowed around
// ",", ";" and "=" (RFC 7239 allows them only around ","; proxies add
// them anyway). It does not allocate.
func parseForwarded(vals []string, l *elements) {
	for _, v := range vals {
		parseForwardedLine(v, l)
	}
}

func parseForwardedLine(s string, l *elements) {
	var e element
	empty := true // e has no pair yet
	i := 0
	for {
		i = skipOWS(s, i)
		if i >= len(s) {
			break
		}
		switch s[i] {
		case ',':
			if !empty {
				l.push(e)
			}
			e, empty = element{}, true
			i++
			continue
		case ';':
			i++
			continue
		}
		j := i
		for j < len(s) && isTchar(s[j]) {
			j++
		}
		name := s[i:j]
		j = skipOWS(s, j)
		if name == "" || j >= len(s) || s[j] != '=' {
			break // syntax error
		}
		j = skipOWS(s, j+1)
		var val string
		escaped := false
		if j < len(s) && s[j] == '"' {
			k := j + 1
			for k < len(s) && s[k] != '"' {
				if s[k] == '\\' {
					escaped = true
					k++
				}
				k++
			}
			if k >= len(s) {
				break // unterminated quoted string
			}
			val, j = s[j+1:k], k+1
		} else {
			k := j
			for k < len(s) && isValueChar(s[k]) {
				k++
			}
			if k == j {
				break // no value
			}
			val, j = s[j:k], k
		}
		empty = false
		switch {
		case strings.EqualFold(name, "for"):
			e.bad = e.bad || e.hasFor || escaped
			e.forv, e.hasFor = val, true
		case strings.EqualFold(name, "proto"):
			e.bad = e.bad || e.proto != "" || escaped
			e.proto = val
		case strings.EqualFold(name, "host"):
			e.bad = e.bad || e.host != "" || escaped
			e.host = val
		}
		j = skipOWS(s, j)
		if j < len(s) && s[j] != ';' && s[j] != ',' {
			break // junk after a value
		}
		i = j
		continue
	}
	if i < len(s) { // left the loop on a syntax error
		e.bad = true
		l.push(e)
		return
	}
	if !empty {
		l.push(e)
	}
}
