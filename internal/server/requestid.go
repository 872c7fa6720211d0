package server

import (
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"strconv"
	"sync/atomic"
)

// idGenerator makes request ids: a random per-process prefix and a
// counter, unique across restarts without a random read per request.
type idGenerator struct {
	prefix string
	n      atomic.Uint64
}

func newIDGenerator() idGenerator {
	var b [6]byte
	rand.Read(b[:])
	return idGenerator{prefix: hex.EncodeToString(b[:]) + "-"}
}

// forRequest returns the request's id as a header value: the client's (or
// a proxy's) X-Request-Id when it is sane, else a new one.
func (g *idGenerator) forRequest(r *http.Request) []string {
	if v := r.Header["X-Request-Id"]; len(v) == 1 && validID(v[0]) {
		return v
	}
	buf := make([]byte, 0, 32)
	buf = append(buf, g.prefix...)
	buf = strconv.AppendUint(buf, g.n.Add(1), 36)
	return []string{string(buf)}
}

// validID accepts 1 to 128 characters that are safe in logs and headers.
func validID(s string) bool {
	if len(s) == 0 || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.' || c == ':') {
			return false
		}
	}
	return true
}
