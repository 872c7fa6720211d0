package config

import (
	"reflect"
	"strconv"
	"strings"

	"github.com/pelletier/go-toml/v2/unstable"
)

// positions maps a dotted key with array indexes
// ("backend.routing_rules[2].pattern.type") to the line it is set on, so
// that errors found after decoding can still point into the file.
type positions map[string]int

// indexPositions walks the TOML document and records where each key is.
// The document has already decoded without error.
func indexPositions(data []byte) positions {
	pos := positions{}
	arrays := map[string]int{} // unindexed array-table path -> element count
	var p unstable.Parser
	p.Reset(data)
	line := func(n *unstable.Node) int { return p.Shape(p.Range(n.Data)).Start.Line }

	// path joins key parts under prefix, indexing array-table elements.
	path := func(prefix, plain string, it unstable.Iterator) (string, string, *unstable.Node) {
		var last *unstable.Node
		for it.Next() {
			last = it.Node()
			part := string(last.Data)
			if prefix != "" {
				prefix += "."
				plain += "."
			}
			prefix += part
			plain += part
			if n, ok := arrays[plain]; ok {
				prefix += "[" + strconv.Itoa(n-1) + "]"
			}
		}
		return prefix, plain, last
	}

	var walkKV func(prefix, plain string, n *unstable.Node)
	walkKV = func(prefix, plain string, n *unstable.Node) {
		key, keyPlain, last := path(prefix, plain, n.Key())
		if last != nil {
			pos[key] = line(last)
		}
		if v := n.Value(); v != nil && v.Kind == unstable.InlineTable {
			for it := v.Children(); it.Next(); {
				walkKV(key, keyPlain, it.Node())
			}
		}
	}

	table, tablePlain := "", ""
	for p.NextExpression() {
		e := p.Expression()
		switch e.Kind {
		case unstable.Table:
			var last *unstable.Node
			table, tablePlain, last = path("", "", e.Key())
			if last != nil {
				pos[table] = line(last)
			}
		case unstable.ArrayTable:
			_, plain, last := path("", "", e.Key())
			arrays[plain]++
			table, tablePlain, _ = path("", "", e.Key())
			if last != nil {
				pos[table] = line(last)
			}
		case unstable.KeyValue:
			walkKV(table, tablePlain, e)
		}
	}
	return pos
}

// line returns the line of key, or of the closest enclosing key that the
// file sets (a default has no line of its own).
func (p positions) line(key string) int {
	for key != "" {
		if l, ok := p[key]; ok {
			return l
		}
		i := strings.LastIndexAny(key, ".[")
		if i < 0 {
			break
		}
		key = key[:i]
	}
	return 0
}

// suggest returns the known key closest to the unknown one, or "".
func suggest(key []string, cfg *Config) string {
	if len(key) == 0 {
		return ""
	}
	t := reflect.TypeOf(*cfg)
	for _, part := range key[:len(key)-1] {
		f, ok := fieldByTag(t, part)
		if !ok {
			return ""
		}
		t = f.Type
		for t.Kind() == reflect.Slice || t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		if t.Kind() != reflect.Struct {
			return ""
		}
	}
	bad := key[len(key)-1]
	best, bestDist := "", len(bad)/2+1
	for i := 0; i < t.NumField(); i++ {
		name := tagName(t.Field(i))
		if name == "" || name == "-" {
			continue
		}
		if d := editDistance(bad, name); d < bestDist {
			best, bestDist = name, d
		}
	}
	return best
}

func fieldByTag(t reflect.Type, name string) (reflect.StructField, bool) {
	if t.Kind() != reflect.Struct {
		return reflect.StructField{}, false
	}
	for i := 0; i < t.NumField(); i++ {
		if tagName(t.Field(i)) == name {
			return t.Field(i), true
		}
	}
	return reflect.StructField{}, false
}

func tagName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
	return name
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
