package compress

import (
	"regexp"
	"strconv"
	"strings"
	"testing"
)

func mustNew(t testing.TB, opts Options) *Compressor {
	t.Helper()
	c, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestNegotiate(t *testing.T) {
	all := mustNew(t, Options{}).codings // zstd, br, gzip
	gzipFirst := mustNew(t, Options{Algorithms: []string{"gzip", "br"}}).codings
	tests := []struct {
		fields  []string
		offered []*coding
		want    string // "" for none
	}{
		{nil, all, ""},          // no field: as it is
		{[]string{""}, all, ""}, // empty: identity only
		{[]string{"gzip"}, all, "gzip"},
		{[]string{"GZip"}, all, "gzip"},
		{[]string{"x-gzip"}, all, "gzip"},
		{[]string{"gzip, deflate, br, zstd"}, all, "zstd"}, // ties: the server's order
		{[]string{"gzip, deflate, br, zstd"}, gzipFirst, "gzip"},
		{[]string{"gzip;q=1.0, br;q=0.9"}, all, "gzip"}, // highest q wins over the server's order
		{[]string{"zstd;q=0.5, br;q=0.8, gzip;q=0.8"}, all, "br"},
		{[]string{"gzip;q=0, br"}, gzipFirst, "br"}, // q=0 refuses
		{[]string{"gzip;q=0.000"}, all, ""},
		{[]string{"*"}, all, "zstd"},               // * covers everything
		{[]string{"*;q=0.5, zstd;q=0"}, all, "br"}, // ... not named
		{[]string{"*;q=0.5, gzip"}, all, "gzip"},   // gzip 1 > 0.5
		{[]string{"*;q=0"}, all, ""},
		{[]string{"identity"}, all, ""},
		{[]string{"gzip;q=0.5, identity"}, all, ""}, // identity preferred
		{[]string{"gzip, identity;q=0.5"}, all, "gzip"},
		{[]string{"gzip;q=0.5, identity;q=0.5"}, all, "gzip"}, // a tie goes to compression
		{[]string{"identity;q=0, gzip;q=0"}, all, ""},         // nothing acceptable: as it is anyway
		{[]string{"deflate, compress"}, all, ""},              // none offered
		{[]string{"br", "gzip"}, gzipFirst, "gzip"},           // several field lines
		{[]string{"br;q=0.1", "zstd;q=0.2"}, all, "zstd"},
		{[]string{"gzip;q=0", "gzip"}, all, ""}, // named twice: the first counts
		{[]string{" \tbr ; q = 0.7 ,  gzip;Q=0.6 "}, all, "br"},
		{[]string{",,, br ,"}, all, "br"},             // empty list elements
		{[]string{"gzip;foo=bar;q=0.3"}, all, "gzip"}, // other parameters ignored
		{[]string{"gzip;q=0.3;q=0"}, all, "gzip"},     // the first q counts
		// Malformed q-values: the element is ignored.
		{[]string{"gzip;q=2"}, all, ""},
		{[]string{"gzip;q=1.5, br;q=0.1"}, all, "br"},
		{[]string{"gzip;q=0.1234"}, all, ""},
		{[]string{"gzip;q=-1"}, all, ""},
		{[]string{"gzip;q="}, all, ""},
		{[]string{"gzip;q=.5"}, all, ""},
		{[]string{"gzip;q=0.5x"}, all, ""},
		{[]string{"gzip;q"}, all, ""},
		{[]string{"zſtd, gzip;q=0.1"}, all, "gzip"}, // no Unicode case folding
		{[]string{";q=1, ;, =, \x00, gzip"}, all, "gzip"},
	}
	for _, tt := range tests {
		got := negotiate(tt.fields, tt.offered)
		name := ""
		if got != nil {
			name = got.name
		}
		if name != tt.want {
			t.Errorf("negotiate(%q) = %q, want %q", tt.fields, name, tt.want)
		}
	}
}

// FuzzAcceptEncoding checks negotiate against a plain reading of RFC
// 9110 12.5.3, written for clarity rather than speed, and that hostile
// input never panics.
func FuzzAcceptEncoding(f *testing.F) {
	for _, s := range []string{
		"", "gzip", "gzip, deflate, br, zstd", "br;q=0.5, *;q=0.1", "identity;q=1, gzip;q=0.9",
		"*;q=0", "x-gzip;q=0.001", "gzip;q=1.000", "zstd;q=0.", ",;=,", "gzip;q=0.5;q=1",
	} {
		f.Add(s, "")
		f.Add(s, "br;q=0.2")
	}
	all := mustNew(f, Options{}).codings
	f.Fuzz(func(t *testing.T, a, b string) {
		fields := []string{a}
		if b != "" {
			fields = append(fields, b)
		}
		got := negotiate(fields, all)
		want := referenceNegotiate(fields, []string{"zstd", "br", "gzip"})
		name := ""
		if got != nil {
			name = got.name
		}
		if name != want {
			t.Errorf("negotiate(%q) = %q, the reference says %q", fields, name, want)
		}
	})
}

var qvalueRE = regexp.MustCompile(`^(0(\.[0-9]{0,3})?|1(\.0{0,3})?)$`)

func referenceNegotiate(fields, offered []string) string {
	if len(fields) == 0 {
		return ""
	}
	q := map[string]int{} // thousandths; the first mention counts
	for _, field := range fields {
		for _, elem := range strings.Split(field, ",") {
			parts := strings.Split(elem, ";")
			name := lowerASCII(strings.Trim(parts[0], " \t"))
			if name == "" {
				continue
			}
			if name == "x-gzip" {
				name = "gzip"
			}
			w, valid := 1000, true
			for _, p := range parts[1:] {
				k, v, _ := strings.Cut(p, "=")
				if lowerASCII(strings.Trim(k, " \t")) != "q" {
					continue
				}
				v = strings.Trim(v, " \t")
				if !qvalueRE.MatchString(v) {
					valid = false
				} else {
					f, _ := strconv.ParseFloat(strings.TrimSuffix(v, "."), 64)
					w = int(f*1000 + 0.5)
				}
				break
			}
			if _, seen := q[name]; valid && !seen {
				q[name] = w
			}
		}
	}
	best, bestQ := "", 0
	for _, name := range offered {
		w, ok := q[name]
		if !ok {
			w, ok = q["*"]
		}
		if ok && w > bestQ {
			best, bestQ = name, w
		}
	}
	if id, ok := q["identity"]; ok && best != "" && id > bestQ {
		return ""
	}
	return best
}

func lowerASCII(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}
