package static

import (
	"cmp"
	"net/http"
	"slices"
	"strconv"
	"strings"
)

// maxRanges is the most ranges one request may ask for. Like nginx's
// max_ranges and Apache's MaxRanges, a request asking for more is
// answered with the whole file. 16 is plenty for real clients (PDF
// readers, download resumers ask for one, a few at most) and keeps a
// multipart/byteranges answer within a few KiB of overhead.
const maxRanges = 16

// ignoreRanges reports whether a Range header is to be ignored, the whole
// file then sent with 200: when it asks for more than maxRanges ranges,
// or for two ranges that overlap. Each range of a multipart answer costs
// a part header, and overlapping ones repeat bytes, so either lets a
// small request make a response many times the file's size (the
// CVE-2011-3192 "Apache Killer" amplification). nginx and Apache, since
// that CVE, answer such requests with the whole file rather than an
// error, and so does this; http.ServeContent's own rule (ranges adding up
// to more than the file) is the overlap rule's weaker form. Adjacent
// ranges do not overlap and are kept. Counted are the ranges written in
// the header, satisfiable or not.
//
// A header http.ServeContent rejects or answers 416 (not "bytes=", a
// malformed or reversed range, no satisfiable range) is left to it, as
// are single ranges: only several ranges can amplify.
func ignoreRanges(header string, size int64) bool {
	spec, ok := strings.CutPrefix(header, "bytes=")
	if !ok || !strings.Contains(spec, ",") {
		return false
	}
	type span struct{ start, end int64 } // bytes [start, end)
	var spans []span
	count := 0
	for ra := range strings.SplitSeq(spec, ",") {
		ra = strings.Trim(ra, " \t")
		if ra == "" {
			continue
		}
		if count++; count > maxRanges {
			return true
		}
		first, last, ok := strings.Cut(ra, "-")
		first, last = strings.Trim(first, " \t"), strings.Trim(last, " \t")
		if !ok {
			return false
		}
		var s span
		if first == "" { // "-N": the last N bytes
			suffix, err := strconv.ParseInt(last, 10, 64)
			if err != nil || suffix < 0 {
				return false
			}
			s = span{max(size-suffix, 0), size}
		} else {
			start, err := strconv.ParseInt(first, 10, 64)
			if err != nil || start < 0 {
				return false
			}
			s = span{start, size}
			if last != "" {
				end, err := strconv.ParseInt(last, 10, 64)
				if err != nil || end < start {
					return false
				}
				s.end = min(end, size-1) + 1
			}
			if start >= size {
				continue // unsatisfiable: http.ServeContent drops it
			}
		}
		spans = append(spans, s)
	}
	slices.SortFunc(spans, func(a, b span) int { return cmp.Compare(a.start, b.start) })
	for i := 1; i < len(spans); i++ {
		if spans[i].start < spans[i-1].end {
			return true
		}
	}
	return false
}

// withoutRange returns a copy of r without its Range header, for
// http.ServeContent to answer with the whole file.
func withoutRange(r *http.Request) *http.Request {
	r = r.Clone(r.Context())
	r.Header.Del("Range")
	return r
}
