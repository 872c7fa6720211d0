package http1

import (
	"net/http"
	"net/textproto"
	"net/url"
	"strings"

	"golang.org/x/net/http/httpguts"
)

// newRequest parses head (the request line and header lines, CRLF ended,
// through the blank line) into a request for the fast path; ok is false
// for any request the fast path leaves to net/http (see the package
// comment). What it accepts, net/http accepts, and parses the same way.
func (c *conn) newRequest(head []byte) (*http.Request, bool) {
	// One string for the whole head: the target and every value are
	// slices of it, not allocations of their own.
	text := string(head)
	line, rest, _ := strings.Cut(text, "\r\n")
	method, line, ok1 := strings.Cut(line, " ")
	target, proto, ok2 := strings.Cut(line, " ")
	if !ok1 || !ok2 || proto != "HTTP/1.1" || len(target) == 0 || target[0] != '/' {
		return nil, false
	}
	switch method {
	case http.MethodGet:
		method = http.MethodGet
	case http.MethodHead:
		method = http.MethodHead
	default:
		return nil, false
	}
	for i := 0; i < len(target); i++ {
		if b := target[i]; b <= ' ' || b == 0x7f {
			return nil, false
		}
	}
	u, err := url.ParseRequestURI(target)
	if err != nil {
		return nil, false
	}

	h := make(http.Header, 8)
	var host string
	hosts := 0
	for {
		var l string
		l, rest, _ = strings.Cut(rest, "\r\n")
		if len(l) == 0 {
			break
		}
		colon := strings.IndexByte(l, ':')
		if colon <= 0 {
			return nil, false // no name, or a continuation line
		}
		name := l[:colon]
		if !validName(name) {
			return nil, false
		}
		value := textproto.TrimString(l[colon+1:])
		if !validValue(value) {
			return nil, false
		}
		key := canonicalKey(name)
		switch key {
		case "Host":
			hosts++
			host = value
			continue // net/http keeps Host out of the header map
		case "Content-Length", "Transfer-Encoding", "Expect", "Upgrade", "Http2-Settings":
			return nil, false
		}
		h[key] = append(h[key], value)
	}
	if hosts != 1 || !httpguts.ValidHostHeader(host) {
		return nil, false
	}
	if p := h["Pragma"]; len(p) > 0 && p[0] == "no-cache" {
		if _, cc := h["Cache-Control"]; !cc {
			h["Cache-Control"] = []string{"no-cache"}
		}
	}
	ctx := newReqCtx(c)
	req := http.Request{
		Method:     method,
		URL:        u,
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: 1,
		Header:     h,
		Body:       http.NoBody,
		Host:       host,
		RemoteAddr: c.remote,
		TLS:        c.tlsState,
		RequestURI: target,
		Close:      httpguts.HeaderValuesContainsToken(h["Connection"], "close"),
	}
	return req.WithContext(ctx), true // one copy: a Request's context is set only so
}

// validName: a header name is a token (RFC 9110 5.1).
func validName(s string) bool {
	for i := 0; i < len(s); i++ {
		if !httpguts.IsTokenRune(rune(s[i])) {
			return false
		}
	}
	return true
}

// validValue: no control characters but tab (RFC 9110 5.5).
func validValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

// commonKeys are interned canonical names, so that the usual headers
// cost no allocation.
var commonKeys = func() map[string]string {
	m := make(map[string]string)
	for _, k := range []string{
		"Accept", "Accept-Charset", "Accept-Encoding", "Accept-Language", "Authorization",
		"Cache-Control", "Connection", "Cookie", "Dnt", "Forwarded", "Host", "If-Match",
		"If-Modified-Since", "If-None-Match", "If-Range", "If-Unmodified-Since", "Origin",
		"Pragma", "Priority", "Range", "Referer", "Sec-Ch-Ua", "Sec-Ch-Ua-Mobile",
		"Sec-Ch-Ua-Platform", "Sec-Fetch-Dest", "Sec-Fetch-Mode", "Sec-Fetch-Site",
		"Sec-Fetch-User", "Te", "Upgrade-Insecure-Requests", "User-Agent", "Via",
		"X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto", "X-Real-Ip",
		"X-Request-Id", "Content-Length", "Transfer-Encoding", "Expect", "Upgrade",
		"Http2-Settings", "Content-Type",
	} {
		m[k] = k
	}
	return m
}()

// canonicalKey is textproto.CanonicalMIMEHeaderKey of a valid name,
// without an allocation when the name is canonical already or common.
func canonicalKey(name string) string {
	if isCanonical(name) {
		return name
	}
	var buf [64]byte
	if len(name) > len(buf) {
		return textproto.CanonicalMIMEHeaderKey(name)
	}
	b := buf[:len(name)]
	upper := true
	for i := 0; i < len(name); i++ {
		c := name[i]
		if upper && 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		} else if !upper && 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		b[i] = c
		upper = c == '-'
	}
	if k, ok := commonKeys[string(b)]; ok {
		return k
	}
	return string(b)
}

func isCanonical(name string) bool {
	upper := true
	for i := 0; i < len(name); i++ {
		c := name[i]
		if upper && 'a' <= c && c <= 'z' || !upper && 'A' <= c && c <= 'Z' {
			return false
		}
		upper = c == '-'
	}
	return true
}
