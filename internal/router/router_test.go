package router

import (
	"testing"
)

// The spec's pattern tables, every example.
func TestSpecPatternExamples(t *testing.T) {
	cases := []struct {
		kind    Kind
		value   string
		match   []string
		noMatch []string
	}{
		{Prefix, "/api/", []string{"/api/users", "/api/v1/products"}, []string{"/users/api"}},
		{Suffix, ".jpg", []string{"/images/photo.jpg", "/photo.jpg"}, []string{"/photo.jpeg"}},
		{Exact, "/status", []string{"/status"}, []string{"/status/", "/api/status"}},
		{Regex, "^/user/[0-9]+$", []string{"/user/123", "/user/456"}, []string{"/user/abc", "/user/123/profile"}},
	}
	for _, c := range cases {
		rt, err := New([]Rule{{Kind: c.kind, Value: c.value, Backend: "x"}})
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range c.match {
			if rt.Match(CleanPath(p)) != 0 {
				t.Errorf("%s %q: %q should match", c.kind, c.value, p)
			}
		}
		for _, p := range c.noMatch {
			if rt.Match(CleanPath(p)) != -1 {
				t.Errorf("%s %q: %q should not match", c.kind, c.value, p)
			}
		}
	}
}

// The spec's hybrid example: rules by descending priority, first match
// wins, equal priorities in file order, default otherwise.
func TestPriorityOrder(t *testing.T) {
	rules := []Rule{
		{Kind: Prefix, Value: "/admin/", Priority: 70, Backend: "fastcgi", Index: 0},
		{Kind: Prefix, Value: "/static/", Priority: 100, Backend: "static", Index: 1},
		{Kind: Suffix, Value: ".jpg", Priority: 90, Backend: "static", Index: 2},
		{Kind: Suffix, Value: ".css", Priority: 85, Backend: "static", Index: 3},
		{Kind: Prefix, Value: "/api/", Priority: 80, Backend: "embedded", Index: 4},
		{Kind: Prefix, Value: "/admin/", Priority: 70, Backend: "static", Index: 5}, // same priority, later: never wins
	}
	rt, err := New(rules)
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string]int{ // path -> rule Index, -1 default
		"/static/a.jpg":     1,
		"/api/photo.jpg":    2,
		"/api/users":        4,
		"/admin/x.css":      3,
		"/admin/users":      0,
		"/index.php":        -1,
		"/":                 -1,
		"/static/../admin/": 0,
	}
	for p, want := range cases {
		got := -1
		if i := rt.Match(CleanPath(p)); i >= 0 {
			got = rt.Rules()[i].Index
		}
		if got != want {
			t.Errorf("%q routed to rule %d, want %d", p, got, want)
		}
	}
}

func TestCleanPath(t *testing.T) {
	cases := map[string]string{
		"/":                    "/",
		"/a/b":                 "/a/b",
		"/a/b/":                "/a/b/",
		"/static/../admin/x":   "/admin/x",
		"/../../etc/passwd":    "/etc/passwd",
		"//a///b":              "/a/b",
		"/a/./b/.":             "/a/b",
		"/a/b/..":              "/a",
		"/a/b/../":             "/a/",
		"":                     "/",
		"a/b":                  "/a/b",
		"/..":                  "/",
		"/.hidden/x":           "/.hidden/x",
		"/a/..b/c":             "/a/..b/c",
		"/static/..%2f..%2fx":  "/static/..%2f..%2fx", // already decoded by net/http; a literal name here
		"/wp-admin/../../../x": "/x",
	}
	for in, want := range cases {
		if got := CleanPath(in); got != want {
			t.Errorf("CleanPath(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestBadRegex(t *testing.T) {
	if _, err := New([]Rule{{Kind: Regex, Value: "^/user/[0-9+$", Index: 3}}); err == nil {
		t.Fatal("want an error for a regex that does not compile")
	}
}

func TestMatchAllocatesNothing(t *testing.T) {
	rt := benchRouter(t)
	allocs := testing.AllocsPerRun(1000, func() {
		rt.Match(CleanPath("/user/123"))
		rt.Match(CleanPath("/index.php"))
	})
	if allocs != 0 {
		t.Fatalf("Match allocated %v times per run, want 0", allocs)
	}
}

func benchRouter(tb testing.TB) *Router {
	rt, err := New([]Rule{
		{Kind: Prefix, Value: "/wp-content/uploads/", Priority: 100, Backend: "static"},
		{Kind: Prefix, Value: "/wp-content/themes/", Priority: 95, Backend: "static"},
		{Kind: Prefix, Value: "/wp-includes/", Priority: 95, Backend: "static"},
		{Kind: Suffix, Value: ".css", Priority: 90, Backend: "static"},
		{Kind: Prefix, Value: "/wp-admin/", Priority: 90, Backend: "fastcgi"},
		{Kind: Exact, Value: "/wp-login.php", Priority: 85, Backend: "fastcgi"},
		{Kind: Regex, Value: "^/user/[0-9]+$", Priority: 70, Backend: "embedded"},
	})
	if err != nil {
		tb.Fatal(err)
	}
	return rt
}

// BenchmarkMatch shows the hot path allocates nothing (-benchmem).
func BenchmarkMatch(b *testing.B) {
	rt := benchRouter(b)
	paths := []string{"/wp-content/uploads/2026/11/a.jpg", "/user/123", "/index.php", "/blog/2026/11/hello-world/"}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		rt.Match(CleanPath(paths[i%len(paths)]))
	}
}

func TestRoute(t *testing.T) {
	rt, err := New([]Rule{{Kind: Prefix, Value: "/admin/", Backend: "fastcgi"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		in, cleaned string
		rule        int
		ok          bool
	}{
		{"/admin/x", "/admin/x", 0, true},
		{"/static/../admin/x", "/admin/x", 0, true},
		{"//admin//x", "/admin/x", 0, true},
		{"/other", "/other", -1, true},
		{"admin/x", "", -1, false},
		{"", "", -1, false},
		{"/admin/\x00x", "", -1, false},
	} {
		c, i, ok := rt.Route(tc.in)
		if c != tc.cleaned || i != tc.rule || ok != tc.ok {
			t.Errorf("Route(%q) = %q, %d, %v; want %q, %d, %v", tc.in, c, i, ok, tc.cleaned, tc.rule, tc.ok)
		}
	}
}
