package phpreq

import (
	"errors"
	"net/http"
	"slices"
	"testing"
)

func TestParseHead(t *testing.T) {
	for _, tc := range []struct {
		name   string
		status int
		lines  string
		want   int    // status; 0: an error
		errSt  int    // the error's status
		header string // one header to check, "Name: value"
		bad    []string
	}{
		{name: "plain", lines: "Content-Type: text/html\r\nX-A: 1", want: 200, header: "X-A: 1"},
		{name: "sapi status", status: 404, lines: "Content-Type: text/html\n", want: 404},
		{name: "cgi status", lines: "Status: 418 I'm a teapot\r\nX-A: 1\r\n", want: 418},
		{name: "status line wins", status: 200, lines: "Status: 503\n", want: 503},
		{name: "location", lines: "Location: /x\n", want: 302, header: "Location: /x"},
		{name: "location 201", status: 201, lines: "Location: /x\n", want: 201},
		{name: "status 1000", status: 1000, want: 0, errSt: 500},
		{name: "status 99", status: 99, want: 0, errSt: 500},
		{name: "status 101", lines: "Status: 101\n", want: 0, errSt: 500},
		{name: "status junk", lines: "Status: abc\n", want: 0, errSt: 500},
		{name: "two lengths", lines: "Content-Length: 5\nContent-Length: 6\n", want: 0, errSt: 502},
		{name: "same length twice", lines: "Content-Length: 5\nContent-Length: 5\n", want: 0, errSt: 502},
		{name: "negative length", lines: "Content-Length: -1\n", want: 0, errSt: 502},
		{name: "junk length", lines: "Content-Length: 5, 6\n", want: 0, errSt: 502},
		{name: "no colon", lines: "garbage line\nX-A: 1\n", want: 200, header: "X-A: 1", bad: []string{"garbage line"}},
		{name: "space in name", lines: "X A: 1\n", want: 200, bad: []string{"X A: 1"}},
		{name: "hop by hop", lines: "Connection: close\nTransfer-Encoding: chunked\nX-A: 1\n", want: 200, header: "X-A: 1"},
		{name: "stream", lines: "X-Accel-Buffering: no\n", want: 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var bad []string
			h := &head{}
			err := parseHead(h, tc.status, []byte(tc.lines), func(l string) { bad = append(bad, l) })
			if tc.want == 0 {
				var pe *Error
				if !errors.As(err, &pe) || pe.Status != tc.errSt || pe.Fault != FaultPHP {
					t.Fatalf("want an *Error with %d, got %v", tc.errSt, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if h.status != tc.want {
				t.Errorf("status %d, want %d", h.status, tc.want)
			}
			if !slices.Equal(bad, tc.bad) {
				t.Errorf("dropped %q, want %q", bad, tc.bad)
			}
			for _, k := range []string{"Connection", "Transfer-Encoding", "Status", "X-Accel-Buffering"} {
				if _, ok := h.header[k]; ok {
					t.Errorf("%s passed on", k)
				}
			}
			if tc.header != "" {
				k, v := tc.header[:indexColon(tc.header)], tc.header[indexColon(tc.header)+2:]
				if got := http.Header(h.header).Get(k); got != v {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
			}
			if tc.name == "stream" && !h.stream {
				t.Error("X-Accel-Buffering: no did not stream")
			}
		})
	}
}

func indexColon(s string) int {
	for i := range s {
		if s[i] == ':' {
			return i
		}
	}
	return -1
}
