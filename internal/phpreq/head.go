package phpreq

import (
	"bytes"
	"fmt"
	"net/http"
	"net/textproto"
	"strconv"
	"strings"

	"golang.org/x/net/http/httpguts"
)

// head is PHP's response head after the one filter both PHP backends go
// through (parseHead).
type head struct {
	status int
	header http.Header // what goes to the client
	// stream: the script asked for its output to go out unbuffered
	// (X-Accel-Buffering: no).
	stream bool
	// contentLength is PHP's own Content-Length, -1 if it sent none.
	contentLength int64
}

// hopByHop are headers that describe one connection, never passed on
// from PHP (RFC 9110, section 7.6.1; Proxy-Connection and Keep-Alive by
// custom).
var hopByHop = map[string]bool{
	"Connection": true, "Keep-Alive": true, "Proxy-Connection": true, "Te": true,
	"Trailer": true, "Transfer-Encoding": true, "Upgrade": true,
}

// parseHead turns the head PHP produced into the response's: status is
// what PHP reports (0: none, as over FastCGI, where a CGI "Status:" line
// carries it), lines are "Name: value" lines separated by "\n" or
// "\r\n". It is the one place both backends' rules live:
//
//   - A line without a colon, or with a name or value HTTP does not
//     allow (CR, LF, NUL, a space in the name), is dropped and passed to
//     bad for the log; the response goes on without it.
//   - "Status: 404 Not Found" sets the status; without one, a Location
//     makes it 302 (the CGI rule), else 200. A status outside 200-599
//     (http_response_code(1000), a 1xx that would leave the client
//     waiting for a final response) is PHP's fault: an *Error with 500.
//   - Content-Length must be one non-negative integer: a second value or
//     junk is an *Error with 502, as nginx answers a broken upstream.
//   - Hop-by-hop headers are dropped; X-Accel-Buffering is consumed
//     (value "no" streams the output).
//
// It fills h (whose header map is reused: cleared first).
func parseHead(h *head, status int, lines []byte, bad func(line string)) error {
	if h.header == nil {
		h.header = make(http.Header, 8)
	}
	clear(h.header)
	h.status, h.stream, h.contentLength = status, false, -1
	for len(lines) > 0 {
		var line []byte
		if i := bytes.IndexByte(lines, '\n'); i >= 0 {
			line, lines = lines[:i], lines[i+1:]
		} else {
			line, lines = lines, nil
		}
		line = bytes.TrimSuffix(line, []byte{'\r'})
		if len(line) == 0 {
			continue
		}
		name, value, ok := bytes.Cut(line, []byte{':'})
		name, value = bytes.TrimSpace(name), bytes.TrimSpace(value)
		key, known := commonNames[string(name)] // no allocation for the usual names
		if !known {
			key = string(name)
		}
		val, known := commonValues[string(value)]
		if !known {
			val = string(value)
		}
		if !ok || !httpguts.ValidHeaderFieldName(key) || !httpguts.ValidHeaderFieldValue(val) {
			bad(string(line))
			continue
		}
		key = textproto.CanonicalMIMEHeaderKey(key)
		switch {
		case key == "Status":
			code, err := cgiStatus(val)
			if err != nil {
				return &Error{Status: http.StatusInternalServerError, Fault: FaultPHP, Err: err}
			}
			h.status = code
			continue
		case key == "X-Accel-Buffering":
			h.stream = strings.EqualFold(val, "no")
			continue
		case key == "Content-Length":
			n, err := strconv.ParseInt(val, 10, 64)
			if err != nil || n < 0 || h.contentLength >= 0 {
				return &Error{Status: http.StatusBadGateway, Fault: FaultPHP,
					Err: fmt.Errorf("PHP sent an invalid or second Content-Length %q", val)}
			}
			h.contentLength = n
		case hopByHop[key]:
			continue
		}
		h.header[key] = append(h.header[key], val)
	}
	if h.status == 0 {
		h.status = http.StatusOK
		if len(h.header["Location"]) > 0 {
			h.status = http.StatusFound
		}
	}
	if h.status < 200 || h.status > 599 {
		return &Error{Status: http.StatusInternalServerError, Fault: FaultPHP,
			Err: fmt.Errorf("PHP set the invalid response status %d", h.status)}
	}
	return nil
}

// commonNames maps the header names PHP sends most, as PHP writes them,
// to their canonical form; commonValues interns the usual values. Both
// save an allocation per header on every response.
var commonNames = func() map[string]string {
	m := map[string]string{}
	for _, n := range []string{"Content-Type", "Content-type", "Cache-Control", "Expires", "Pragma", "Set-Cookie",
		"Location", "Content-Length", "Status", "X-Powered-By", "Vary", "Last-Modified", "ETag", "Link"} {
		m[n] = textproto.CanonicalMIMEHeaderKey(n)
	}
	return m
}()

var commonValues = func() map[string]string {
	m := map[string]string{}
	for _, v := range []string{"text/html; charset=UTF-8", "text/html; charset=utf-8", "text/html", "application/json",
		"no-cache", "no-store, no-cache, must-revalidate", "Thu, 19 Nov 1981 08:52:00 GMT", "Accept-Encoding"} {
		m[v] = v
	}
	return m
}()

// cgiStatus parses a CGI Status value: "404" or "404 Not Found".
func cgiStatus(v string) (int, error) {
	code, _, _ := strings.Cut(v, " ")
	n, err := strconv.Atoi(code)
	if err != nil || len(code) != 3 {
		return 0, fmt.Errorf("PHP sent the invalid status line %q", v)
	}
	return n, nil
}

// bodyAllowed reports whether a response with this status carries a body.
func bodyAllowed(status int) bool {
	return status != http.StatusNoContent && status != http.StatusNotModified && status >= 200
}
