package http1

import (
	"bytes"
	"net/http"
	"net/textproto"
	"net/url"

	"golang.org/x/net/http/httpguts"
)

// newRequest parses head (the request line and header lines, CRLF ended,
// through the blank line) into a request for the fast path; ok is false
// for any request the fast path leaves to net/http (see the package
// comment). What it accepts, net/http accepts, and parses the same way.
func (c *conn) newRequest(head []byte) (*http.Request, bool) {
	line, rest, _ := bytes.Cut(head, crlf)
	method, line, ok1 := bytes.Cut(line, sp)
	target, proto, ok2 := bytes.Cut(line, sp)
	if !ok1 || !ok2 || string(proto) != "HTTP/1.1" || len(target) == 0 || target[0] != '/' {
		return nil, false
	}
	var m string
	switch string(method) {
	case http.MethodGet:
		m = http.MethodGet
	case http.MethodHead:
		m = http.MethodHead
	default:
		return nil, false
	}
	for _, b := range target {
		if b <= ' ' || b == 0x7f {
			return nil, false
		}
	}
	rawURL := string(target)
	u, err := url.ParseRequestURI(rawURL)
	if err != nil {
		return nil, false
	}

	h := make(http.Header, 8)
	var host string
	hosts := 0
	for {
		var l []byte
		l, rest, _ = bytes.Cut(rest, crlf)
		if len(l) == 0 {
			break
		}
		colon := bytes.IndexByte(l, ':')
		if colon <= 0 {
			return nil, false // no name, or a continuation line
		}
		name := l[:colon]
		if !validName(name) {
			return nil, false
		}
		value := textproto.TrimBytes(l[colon+1:])
		if !validValue(value) {
			return nil, false
		}
		key := canonicalKey(name)
		switch key {
		case "Host":
			hosts++
			host = string(value)
			continue // net/http keeps Host out of the header map
		case "Content-Length", "Transfer-Encoding", "Expect", "Upgrade", "Http2-Settings":
			return nil, false
		}
		h[key] = append(h[key], string(value))
	}
	if hosts != 1 || !httpguts.ValidHostHeader(host) {
		return nil, false
	}
	if _, ok := h["Pragma"]; ok {
		if _, cc := h["Cache-Control"]; !cc && len(h["Pragma"]) > 0 && h["Pragma"][0] == "no-cache" {
			h["Cache-Control"] = []string{"no-cache"}
		}
	}
	ctx := newReqCtx(c)
	req := http.Request{
		Method:     m,
		URL:        u,
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: 1,
		Header:     h,
		Body:       http.NoBody,
		Host:       host,
		RemoteAddr: c.remote,
		RequestURI: rawURL,
		Close:      httpguts.HeaderValuesContainsToken(h["Connection"], "close"),
	}
	return req.WithContext(ctx), true // one copy: a Request's context is set only so
}

var (
	crlf = []byte("\r\n")
	sp   = []byte(" ")
)

// validName: a header name is a token (RFC 9110 5.1).
func validName(b []byte) bool {
	for _, c := range b {
		if !httpguts.IsTokenRune(rune(c)) {
			return false
		}
	}
	return true
}

// validValue: no control characters but tab (RFC 9110 5.5).
func validValue(b []byte) bool {
	for _, c := range b {
		if c < ' ' && c != '\t' || c == 0x7f {
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
// without an allocation for the common ones.
func canonicalKey(name []byte) string {
	var buf [64]byte
	if len(name) > len(buf) {
		return textproto.CanonicalMIMEHeaderKey(string(name))
	}
	b := buf[:len(name)]
	upper := true
	for i, c := range name {
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
