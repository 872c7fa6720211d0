package static

import (
	"bytes"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// manyRanges is a Range header of n ranges made by spec.
func manyRanges(n int, spec func(i int) string) string {
	s := make([]string, n)
	for i := range s {
		s[i] = spec(i)
	}
	return "bytes=" + strings.Join(s, ",")
}

// TestRangeLimits: a Range header cannot make a response larger than the
// file (CVE-2011-3192's amplification): too many ranges, or overlapping
// ones, get the whole file once, with 200. Ordinary range requests work
// as http.ServeContent answers them.
func TestRangeLimits(t *testing.T) {
	root := t.TempDir()
	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
	small := big[:1000]
	for name, b := range map[string][]byte{"big.bin": big, "small.bin": small} {
		if err := os.WriteFile(filepath.Join(root, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	h, err := New(Options{Root: root})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	get := func(p string, hdr ...string) *httptest.ResponseRecorder {
		r := httptest.NewRequest("GET", p, nil)
		for i := 0; i+1 < len(hdr); i += 2 {
			r.Header.Set(hdr[i], hdr[i+1])
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		return rec
	}

	for _, f := range []struct {
		path string
		body []byte
	}{{"/big.bin", big}, {"/small.bin", small}} {
		size := len(f.body)
		for _, c := range []struct{ name, rng string }{
			{"1000 disjoint 1-byte ranges", manyRanges(1000, func(i int) string { return fmt.Sprintf("%d-%d", 2*i, 2*i) })},
			{"1000 times the first byte", manyRanges(1000, func(int) string { return "0-0" })},
			{"1000 times the last byte", manyRanges(1000, func(int) string { return "-1" })},
			{"1000 times the last thousandth", manyRanges(1000, func(int) string { return fmt.Sprintf("%d-", size-size/1000) })},
			{"maxRanges+1 disjoint ranges", manyRanges(maxRanges+1, func(i int) string { return fmt.Sprintf("%d-%d", 10*i, 10*i+4) })},
			{"two overlapping ranges", "bytes=0-99,50-149"},
			{"a range inside another", "bytes=0-499,10-19"},
			{"a suffix range overlapping", "bytes=0-9,-" + fmt.Sprint(size)},
			{"the same open range twice", "bytes=100-,100-"},
		} {
			rec := get(f.path, "Range", c.rng)
			if rec.Code != http.StatusOK || !bytes.Equal(rec.Body.Bytes(), f.body) {
				t.Errorf("GET %s, %s: status %d, %d bytes (%.1fx the file); want 200 with the whole file once",
					f.path, c.name, rec.Code, rec.Body.Len(), float64(rec.Body.Len())/float64(size))
			}
			if cr := rec.Header().Get("Content-Range"); cr != "" {
				t.Errorf("GET %s, %s: Content-Range %q on a whole-file answer", f.path, c.name, cr)
			}
		}
	}

	size := len(big)
	// Ordinary range requests, as before.
	for _, c := range []struct {
		rng, ifRange string
		status       int
		parts        []string // Content-Range of each part, or of the single range
	}{
		{"bytes=0-4", "", 206, []string{"bytes 0-4/1048576"}},
		{"bytes=-500", "", 206, []string{"bytes 1048076-1048575/1048576"}},
		{"bytes=1048000-", "", 206, []string{"bytes 1048000-1048575/1048576"}},
		{"bytes=0-0,-1", "", 206, []string{"bytes 0-0/1048576", "bytes 1048575-1048575/1048576"}},
		{"bytes=0-99,100-199", "", 206, []string{"bytes 0-99/1048576", "bytes 100-199/1048576"}}, // adjacent, not overlapping
		{"bytes=500-599,0-9", "", 206, []string{"bytes 500-599/1048576", "bytes 0-9/1048576"}},   // out of order
		{manyRanges(maxRanges, func(i int) string { return fmt.Sprintf("%d-%d", 10*i, 10*i+4) }), "", 206, nil},
		{"bytes=0-1,9999999-", "", 206, []string{"bytes 0-1/1048576"}}, // the unsatisfiable one is dropped
		{"bytes=9999999-", "", 416, nil},
		{"bytes=5-2", "", 416, nil},
		{"bytes=0-4", "match", 206, []string{"bytes 0-4/1048576"}},
		{"bytes=0-4", `"other"`, 200, nil},
		{manyRanges(1000, func(int) string { return "0-0" }), "match", 200, nil},
	} {
		hdr := []string{"Range", c.rng}
		if c.ifRange == "match" {
			hdr = append(hdr, "If-Range", get("/big.bin").Header().Get("Etag"))
		} else if c.ifRange != "" {
			hdr = append(hdr, "If-Range", c.ifRange)
		}
		rec := get("/big.bin", hdr...)
		if rec.Code != c.status {
			t.Errorf("Range %.40s If-Range %s: status %d, want %d", c.rng, c.ifRange, rec.Code, c.status)
			continue
		}
		switch {
		case c.status == 416:
			if cr := rec.Header().Get("Content-Range"); c.rng == "bytes=9999999-" && cr != "bytes */1048576" {
				t.Errorf("Range %s: Content-Range %q", c.rng, cr)
			}
		case c.status == 200:
			if rec.Body.Len() != size {
				t.Errorf("Range %.40s If-Range %s: %d bytes, want the whole file", c.rng, c.ifRange, rec.Body.Len())
			}
		case len(c.parts) == 1:
			var start, end int
			fmt.Sscanf(c.parts[0], "bytes %d-%d/", &start, &end)
			if cr := rec.Header().Get("Content-Range"); cr != c.parts[0] || !bytes.Equal(rec.Body.Bytes(), big[start:end+1]) {
				t.Errorf("Range %s: Content-Range %q, %d bytes; want %q", c.rng, cr, rec.Body.Len(), c.parts[0])
			}
		default:
			got := multipartRanges(t, rec, big)
			if c.parts == nil && len(got) != maxRanges || c.parts != nil && strings.Join(got, ",") != strings.Join(c.parts, ",") {
				t.Errorf("Range %.40s: parts %q, want %q", c.rng, got, c.parts)
			}
		}
	}
}

// multipartRanges returns the Content-Range of each part of a
// multipart/byteranges answer, checking each part's bytes against file.
func multipartRanges(t *testing.T, rec *httptest.ResponseRecorder, file []byte) []string {
	t.Helper()
	mt, params, err := mime.ParseMediaType(rec.Header().Get("Content-Type"))
	if err != nil || mt != "multipart/byteranges" {
		t.Errorf("Content-Type %q, want multipart/byteranges", rec.Header().Get("Content-Type"))
		return nil
	}
	mr := multipart.NewReader(rec.Body, params["boundary"])
	var out []string
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(p)
		cr := p.Header.Get("Content-Range")
		var start, end int
		fmt.Sscanf(cr, "bytes %d-%d/", &start, &end)
		if !bytes.Equal(b, file[start:end+1]) {
			t.Errorf("part %q: wrong bytes", cr)
		}
		out = append(out, cr)
	}
}

func TestIgnoreRanges(t *testing.T) {
	const size = 1000
	for _, c := range []struct {
		header string
		want   bool
	}{
		{"bytes=0-4", false},
		{"bytes=-500", false},
		{"bytes=0-", false},
		{"bytes=0-0,-1", false},
		{"bytes=0-99,100-199", false}, // adjacent
		{"bytes=500-599,0-9", false},  // out of order, disjoint
		{"bytes=0-1,2000-", false},    // the unsatisfiable one does not overlap
		{"bytes=0-1,,,5-6", false},    // empty elements are not ranges
		{manyRanges(maxRanges, func(i int) string { return fmt.Sprintf("%d-%d", 10*i, 10*i+4) }), false},
		{"bytes=5-2,0-0", false}, // malformed: left to http.ServeContent (416)
		{"bytes=x-1,0-0", false},
		{"pages=0-1,0-1", false},
		{"bytes=0-1,0-1", true},
		{manyRanges(maxRanges+1, func(i int) string { return fmt.Sprintf("%d-%d", 10*i, 10*i+4) }), true},
		{manyRanges(maxRanges+1, func(i int) string { return fmt.Sprintf("%d-", 2000+i) }), true}, // counted even if unsatisfiable
		{"bytes=0-99,50-149", true},
		{"bytes=0-499,10-19", true},
		{"bytes=900-,-50", true},
		{"bytes=0-0,0-0", true},
		{"bytes=-1,-1", true},
		{"bytes=0-999999,5-6", true}, // an end past the file is cut to it
		{"bytes= 0-9 , 5-6", true},
		{"bytes=0-9223372036854775807,5-6", true},
		{"bytes=-9223372036854775807,5-6", true},
	} {
		if got := ignoreRanges(c.header, size); got != c.want {
			t.Errorf("ignoreRanges(%.50q, %d) = %v, want %v", c.header, size, got, c.want)
		}
	}
}
