//go:build fephp_bridge

package integration

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"testing"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/zstd"

	"github.com/fe-php/fe-php/internal/testutil/fpmtest"
)

// decode undoes a Content-Encoding.
func decode(t *testing.T, coding string, body []byte) []byte {
	t.Helper()
	var r io.Reader
	switch coding {
	case "gzip":
		zr, err := gzip.NewReader(bytes.NewReader(body))
		if err != nil {
			t.Fatalf("gzip: %v", err)
		}
		r = zr
	case "br":
		r = brotli.NewReader(bytes.NewReader(body))
	case "zstd":
		zr, err := zstd.NewReader(bytes.NewReader(body))
		if err != nil {
			t.Fatalf("zstd: %v", err)
		}
		defer zr.Close()
		r = zr
	case "":
		return body
	default:
		t.Fatalf("unexpected Content-Encoding %q", coding)
	}
	out, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("%s: %v", coding, err)
	}
	return out
}

// Responses of every backend are compressed with the coding the client
// prefers (zstd, br, gzip), with Vary and a weak ETag; ranges, small
// bodies, PHP's own compression and precompressed siblings are left alone;
// curl decodes each.
func TestCompression(t *testing.T) {
	t.Parallel()
	root, _ := newPHPSiteDir(t)
	page := strings.Repeat("<p>fe-php compresses what PHP and the disk send.</p>\n", 100)
	writeFiles(t, root, map[string]string{
		"page.html":    page,
		"page.php":     "<?php header('Content-Type: text/html; charset=UTF-8'); echo str_repeat('<p>fe-php compresses what PHP and the disk send.</p>' . \"\\n\", 100);",
		"zlib.php":     "<?php ini_set('zlib.output_compression', '1'); echo str_repeat('PHP compresses this itself. ', 200);",
		"small.php":    "<?php echo 'short';",
		"pre.css":      strings.Repeat("body { color: red }\n", 100),
		"pre.css.br":   "precompressed-sibling",
		"fpm/page.php": "<?php header('Content-Type: text/html; charset=UTF-8'); echo str_repeat('<p>fe-php compresses what PHP and the disk send.</p>' . \"\\n\", 100);",
	})
	f := fpmtest.Start(t, fpmtest.Options{Children: 1, DocRoot: root})
	s := startServer(t, fmt.Sprintf(`[php]
document_root = %q
fpm_socket = %q
worker_pool_size = 1

[[backend.routing_rules]]
pattern = { type = "prefix", value = "/fpm/" }
backend = "fastcgi"

[[backend.routing_rules]]
pattern = { type = "suffix", value = ".html" }
backend = "static"

[[backend.routing_rules]]
pattern = { type = "suffix", value = ".css" }
backend = "static"
`, root, f.Address), nil)

	for _, path := range []string{"/page.html", "/page.php", "/fpm/page.php"} {
		for _, c := range []struct{ accept, want string }{
			{"gzip, deflate, br, zstd", "zstd"},
			{"gzip;q=1, br;q=0.5", "gzip"},
			{"br", "br"},
			{"zstd;q=0, gzip;q=0.1, *;q=0.2", "br"},
			{"identity", ""},
			{"", ""},
		} {
			resp, body := get(t, s, path, "Accept-Encoding: "+c.accept)
			if resp.StatusCode != 200 || resp.Header.Get("Content-Encoding") != c.want {
				t.Errorf("GET %s with Accept-Encoding %q: %s, Content-Encoding %q, want %q", path, c.accept, describe(resp), resp.Header.Get("Content-Encoding"), c.want)
				continue
			}
			if got := string(decode(t, c.want, body)); !strings.HasPrefix(got, "<p>fe-php compresses") || len(got) != len(page) {
				t.Errorf("GET %s (%s): decoded body of %d bytes, want the page's %d", path, c.want, len(got), len(page))
			}
			if !strings.Contains(resp.Header.Get("Vary"), "Accept-Encoding") {
				t.Errorf("GET %s (%q): Vary %q", path, c.accept, resp.Header.Get("Vary"))
			}
			if et := resp.Header.Get("ETag"); c.want != "" && et != "" && !strings.HasPrefix(et, "W/") {
				t.Errorf("GET %s (%s): a compressed response's ETag %q is not weak", path, c.want, et)
			}
		}
	}

	all := "Accept-Encoding: zstd, br, gzip"
	resp, body := get(t, s, "/page.html", all, "Range: bytes=0-9")
	if resp.StatusCode != http.StatusPartialContent || resp.Header.Get("Content-Encoding") != "" || string(body) != page[:10] {
		t.Errorf("a range: %s, Content-Encoding %q, %q", describe(resp), resp.Header.Get("Content-Encoding"), body)
	}
	resp, body = get(t, s, "/small.php", all)
	if resp.Header.Get("Content-Encoding") != "" || string(body) != "short" {
		t.Errorf("below min_length: Content-Encoding %q, %q", resp.Header.Get("Content-Encoding"), body)
	}
	resp, body = get(t, s, "/zlib.php", "Accept-Encoding: gzip, zstd")
	if resp.Header.Get("Content-Encoding") != "gzip" || !strings.HasPrefix(string(decode(t, "gzip", body)), "PHP compresses this itself.") {
		t.Errorf("PHP's zlib.output_compression: Content-Encoding %q (want PHP's gzip, not compressed again)", resp.Header.Get("Content-Encoding"))
	}
	resp, body = get(t, s, "/pre.css", all)
	if resp.Header.Get("Content-Encoding") != "br" || string(body) != "precompressed-sibling" {
		t.Errorf("a precompressed sibling: Content-Encoding %q, %q", resp.Header.Get("Content-Encoding"), body)
	}

	// curl, a real client, decodes each coding it negotiates.
	if _, err := exec.LookPath("curl"); err != nil {
		t.Fatal("curl is not installed (scripts/deps.sh installs it)")
	}
	for _, coding := range []string{"zstd", "br", "gzip"} {
		out, err := exec.Command("curl", "-sS", "--compressed", "-H", "Accept-Encoding: "+coding, "-D", "-", s.URL("/page.php")).Output()
		if err != nil {
			t.Fatalf("curl %s: %v", coding, err)
		}
		head, got, _ := strings.Cut(strings.ReplaceAll(string(out), "\r\n", "\n"), "\n\n")
		if !strings.Contains(strings.ToLower(head), "content-encoding: "+coding) || got != page {
			t.Errorf("curl --compressed with %s: head\n%s\nbody of %d bytes, want %d", coding, head, len(got), len(page))
		}
	}
}
