package forwarded

import (
	"net/netip"
	"strings"
	"testing"
)

func TestParseTrust(t *testing.T) {
	tr, err := ParseTrust([]string{"10.0.0.0/8", " 127.0.0.1 ", "::1", "fd00::/8", "192.168.1.77/24", "::ffff:172.16.0.0/108"})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		ip   string
		want bool
	}{
		{"10.1.2.3", true},
		{"11.0.0.1", false},
		{"127.0.0.1", true},
		{"127.0.0.2", false},
		{"::1", true},
		{"::2", false},
		{"fd12:3456::1", true},
		{"fe80::1", false},
		{"192.168.1.1", true}, // 192.168.1.77/24 is 192.168.1.0/24
		{"192.168.2.1", false},
		{"172.16.5.5", true},          // the mapped CIDR is 172.16.0.0/12
		{"::ffff:10.9.9.9", true},     // a mapped peer is its IPv4 form
		{"::ffff:11.9.9.9", false},    //
		{"fd00::1%eth0", true},        // the zone is ignored
		{"2001:db8::10.0.0.1", false}, // not mapped: IPv6
	} {
		if got := tr.Contains(netip.MustParseAddr(c.ip)); got != c.want {
			t.Errorf("Contains(%s) = %v, want %v", c.ip, got, c.want)
		}
	}
	if tr.Contains(netip.Addr{}) {
		t.Error("the zero Addr is trusted")
	}
}

func TestParseTrust_private(t *testing.T) {
	tr, err := ParseTrust([]string{"Private"})
	if err != nil {
		t.Fatal(err)
	}
	for _, ip := range []string{"10.0.0.1", "172.16.0.1", "172.31.255.255", "192.168.0.1", "127.0.0.1", "127.255.0.1", "::1", "fc00::1", "fd00::1"} {
		if !tr.Contains(netip.MustParseAddr(ip)) {
			t.Errorf("private does not contain %s", ip)
		}
	}
	for _, ip := range []string{"172.32.0.1", "192.0.2.1", "8.8.8.8", "100.64.0.1", "169.254.0.1", "fe80::1", "2001:db8::1", "::"} {
		if tr.Contains(netip.MustParseAddr(ip)) {
			t.Errorf("private contains %s", ip)
		}
	}
}

func TestParseTrust_errors(t *testing.T) {
	for _, bad := range []string{"", "  ", "10.0.0.300", "10.0.0.0/33", "example.com", "fe80::1%eth0", "10.0.0.0/8/8", "privat", "1.2.3.4:80"} {
		_, err := ParseTrust([]string{"10.0.0.0/8", bad})
		if err == nil {
			t.Errorf("ParseTrust(%q): no error", bad)
			continue
		}
		if !strings.Contains(err.Error(), "entry 2 ") || !strings.Contains(err.Error(), `"`+bad+`"`) {
			t.Errorf("ParseTrust(%q): error %q does not name the entry", bad, err)
		}
	}
	_, err := ParseTrust([]string{"x", "10.0.0.0/8", "y"})
	if err == nil || !strings.Contains(err.Error(), `"x"`) || !strings.Contains(err.Error(), `"y"`) {
		t.Errorf("every bad entry is not named: %v", err)
	}
}

func TestTrust_nil(t *testing.T) {
	var tr *Trust
	if tr.Contains(netip.MustParseAddr("127.0.0.1")) || !tr.Empty() || tr.String() != "none" {
		t.Error("a nil Trust trusts someone")
	}
	empty, err := ParseTrust(nil)
	if err != nil || !empty.Empty() || empty.Contains(netip.MustParseAddr("127.0.0.1")) {
		t.Errorf("ParseTrust(nil) = %v, %v", empty, err)
	}
	if s := MustParseTrust("10.0.0.0/8", "::1").String(); s != "10.0.0.0/8, ::1/128" {
		t.Errorf("String() = %q", s)
	}
}
