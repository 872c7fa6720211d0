// Package headerops applies configured response headers: [server]
// headers and a routing rule's headers ("Name" = value sets, "-Name"
// removes), over what the backend set.
package headerops

import (
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"

	"golang.org/x/net/http/httpguts"
)

// Ops are the response header changes of one route: [server] headers,
// then its rule's. They are applied when the response's head is written,
// over what the backend set (PHP's headers included): the configuration
// has the last word, as a Cache-Control for a whole directory of bundles
// must.
type Ops struct {
	set [][2]string // canonical name, value
	del []string
}

// protectedHeaders describe the message itself, not its content: a
// configured value would break the framing or the compression.
var protectedHeaders = map[string]bool{
	"Content-Length": true, "Transfer-Encoding": true, "Content-Encoding": true,
	"Connection": true, "Keep-Alive": true, "Upgrade": true, "Trailer": true, "Te": true,
	"Content-Range": true, "Date": true,
}

// Parse turns config tables into Ops: each later table overrides the
// earlier ones; "Name" = value sets, "-Name" = "" removes. It returns nil
// when there is nothing to do.
func Parse(tables ...map[string]string) (*Ops, error) {
	merged := map[string]*string{} // canonical name -> value (nil: removed)
	for _, t := range tables {
		for _, key := range slices.Sorted(maps.Keys(t)) {
			name, remove := strings.CutPrefix(key, "-")
			if !httpguts.ValidHeaderFieldName(name) {
				return nil, fmt.Errorf("%q is not a header name", key)
			}
			canon := http.CanonicalHeaderKey(name)
			if protectedHeaders[canon] {
				return nil, fmt.Errorf("%s is set by fe-php for each response, not by configuration", canon)
			}
			if remove {
				merged[canon] = nil
				continue
			}
			v := t[key]
			if !httpguts.ValidHeaderFieldValue(v) {
				return nil, fmt.Errorf("the value of %s holds a control character", name)
			}
			merged[canon] = &v
		}
	}
	if len(merged) == 0 {
		return nil, nil
	}
	ops := &Ops{}
	for _, name := range slices.Sorted(maps.Keys(merged)) {
		if v := merged[name]; v != nil {
			ops.set = append(ops.set, [2]string{name, *v})
		} else {
			ops.del = append(ops.del, name)
		}
	}
	return ops, nil
}

// Apply changes the headers h of a response with status as configured
// (a nil *Ops changes nothing). Headers are set on successes and
// redirects only, as nginx's add_header does: a year-long Cache-Control
// must not make a 404 for a missing bundle stick in caches. Removals
// apply to every response.
func (o *Ops) Apply(h http.Header, status int) {
	if o == nil {
		return
	}
	if status < 400 {
		for _, kv := range o.set {
			h[kv[0]] = []string{kv[1]}
		}
	}
	for _, name := range o.del {
		delete(h, name)
	}
}
