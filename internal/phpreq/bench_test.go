package phpreq

import (
	"context"
	"net"
	"net/http"
	"testing"
)

func BenchmarkResolve(b *testing.B) {
	root := site(b, wpSite...)
	rs := newResolver(b, root, "/index.php")
	for _, bc := range []struct{ name, target string }{
		{"script", "/index.php"},
		{"pathinfo", "/a.php/b/c"},
		{"static", "/wp-admin/css/x.css"},
		{"dirindex", "/wp-admin/"},
		{"front", "/2024/01/hello-world/"},
		{"forbidden", "/.git/config"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			r := request("GET", bc.target)
			b.ReportAllocs()
			for b.Loop() {
				if rs.Resolve(r).Kind == NotFound {
					b.Fatal("not found")
				}
			}
		})
	}
}

// browserRequest has the headers a browser sends for a page.
func browserRequest() *http.Request {
	r := request("GET", "/2024/01/hello-world/?utm_source=x")
	r.Host = "example.com"
	r.RemoteAddr = "192.0.2.7:51234"
	h := r.Header
	h.Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36")
	h.Set("Accept", "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8")
	h.Set("Accept-Language", "en-US,en;q=0.9,ja;q=0.8")
	h.Set("Accept-Encoding", "gzip, deflate, br, zstd")
	h.Set("Cookie", "wordpress_logged_in_abc=admin%7C1700000000%7Cxyz; wp-settings-1=libraryContent%3Dbrowse")
	h.Set("Referer", "https://example.com/")
	h.Set("Sec-Fetch-Dest", "document")
	h.Set("Sec-Fetch-Mode", "navigate")
	h.Set("Sec-Fetch-Site", "same-origin")
	h.Set("Upgrade-Insecure-Requests", "1")
	h.Set("X-Request-Id", "0123456789abcdef")
	return r.WithContext(context.WithValue(r.Context(), http.LocalAddrContextKey,
		&net.TCPAddr{IP: net.ParseIP("198.51.100.1"), Port: 80}))
}

func BenchmarkEnv(b *testing.B) {
	rs := newResolver(b, site(b, wpSite...), "/index.php")
	b.Run("front", func(b *testing.B) {
		r := browserRequest()
		t := rs.Resolve(r)
		b.ReportAllocs()
		for b.Loop() {
			e := mustEnv(b, rs, r, &t, -1)
			for range e.All() {
			}
			e.Release()
		}
	})
	b.Run("pathinfo+unknown-header", func(b *testing.B) {
		r := browserRequest()
		r.URL.Path = "/a.php/b/c"
		r.Header.Set("X-Custom-App-Header", "1")
		t := rs.Resolve(r)
		b.ReportAllocs()
		for b.Loop() {
			e := mustEnv(b, rs, r, &t, -1)
			e.Release()
		}
	})
}

func BenchmarkHeaderName(b *testing.B) {
	b.Run("table", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = httpName("Accept-Language")
		}
	})
	b.Run("convert", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = httpName("X-Custom-App-Header")
		}
	})
}

// BenchmarkStat is the floor under Resolve: one stat(2) of a script.
func BenchmarkStat(b *testing.B) {
	name := site(b, "index.php") + "/index.php"
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := statMode(name); !ok {
			b.Fatal("stat")
		}
	}
}
