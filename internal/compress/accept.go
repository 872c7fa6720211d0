package compress

import "strings"

// negotiate picks the coding for a request's Accept-Encoding field lines
// (RFC 9110 12.5.3), or nil for none: the offered coding with the
// highest q-value, q=0 refusing it, "*" standing for the codings not
// named; ties go to the earlier in offered. An explicit "identity" with a
// higher q-value than that coding wins, and the response goes as it is.
// No field at all means no coding. Malformed elements (an invalid
// q-value) are skipped; when a coding is named twice the first counts.
func negotiate(fields []string, offered []*coding) *coding {
	if len(fields) == 0 {
		return nil
	}
	const unset = -1
	var q [len(allCodings)]int // per offered coding, in thousandths
	for i := range offered {
		q[i] = unset
	}
	star, identity := unset, unset

	for _, field := range fields {
		for len(field) > 0 {
			var elem string
			if i := strings.IndexByte(field, ','); i >= 0 {
				elem, field = field[:i], field[i+1:]
			} else {
				elem, field = field, ""
			}
			name, params, _ := strings.Cut(elem, ";")
			name = trimOWS(name)
			if name == "" {
				continue // an empty list element, allowed
			}
			w, ok := weight(params)
			if !ok {
				continue
			}
			switch {
			case name == "*":
				if star == unset {
					star = w
				}
			case equalFold(name, "identity"):
				if identity == unset {
					identity = w
				}
			default:
				if equalFold(name, "x-gzip") {
					name = "gzip" // RFC 9110 8.4.1.3
				}
				for i, cd := range offered {
					if q[i] == unset && equalFold(name, cd.name) {
						q[i] = w
					}
				}
			}
		}
	}

	var best *coding
	bestQ := 0
	for i, cd := range offered {
		w := q[i]
		if w == unset {
			w = star
		}
		if w > bestQ { // strictly: ties keep the earlier coding
			best, bestQ = cd, w
		}
	}
	if best != nil && identity > bestQ {
		return nil
	}
	return best
}

// weight returns the q-value of an element's parameters in thousandths
// (1000 when there is none); ok is false if it is malformed. Parameters
// other than q are ignored.
func weight(params string) (w int, ok bool) {
	w, seen := 1000, false
	for len(params) > 0 {
		var p string
		if i := strings.IndexByte(params, ';'); i >= 0 {
			p, params = params[:i], params[i+1:]
		} else {
			p, params = params, ""
		}
		k, v, _ := strings.Cut(p, "=")
		if seen || !equalFold(trimOWS(k), "q") {
			continue
		}
		seen = true
		if w, ok = qvalue(trimOWS(v)); !ok {
			return 0, false
		}
	}
	return w, true
}

// qvalue parses a q-value, "0" to "1" with up to three decimals (RFC 9110
// 12.4.2), in thousandths.
func qvalue(s string) (int, bool) {
	if len(s) == 0 || len(s) > 5 || (s[0] != '0' && s[0] != '1') {
		return 0, false
	}
	w := int(s[0]-'0') * 1000
	if len(s) == 1 {
		return w, true
	}
	if s[1] != '.' {
		return 0, false
	}
	scale := 100
	for i := 2; i < len(s); i++ {
		d := s[i]
		if d < '0' || d > '9' || (w == 1000 && d != '0') {
			return 0, false
		}
		w += int(d-'0') * scale
		scale /= 10
	}
	return w, true
}

// trimOWS removes optional whitespace (spaces and tabs) around s.
func trimOWS(s string) string {
	for len(s) > 0 && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for len(s) > 0 && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}

// equalFold reports whether s and t are equal ignoring ASCII case, as
// header tokens are compared (strings.EqualFold would also take "ſ" for
// "s" and "K" for "k").
func equalFold(s, t string) bool {
	if len(s) != len(t) {
		return false
	}
	for i := 0; i < len(s); i++ {
		a, b := s[i], t[i]
		if 'A' <= a && a <= 'Z' {
			a += 'a' - 'A'
		}
		if 'A' <= b && b <= 'Z' {
			b += 'a' - 'A'
		}
		if a != b {
			return false
		}
	}
	return true
}
