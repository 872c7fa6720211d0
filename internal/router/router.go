// Package router chooses a backend for a request path.
//
// Rules are tried by descending priority, equal priorities in the order
// they were given; the first match wins, and no match means the default
// backend. Matching is done on the cleaned, percent-decoded path without
// the query (see CleanPath), so "/static/../admin/x" routes as "/admin/x".
// Match allocates nothing.
package router

import (
	"fmt"
	"path"
	"regexp"
	"slices"
	"strings"

	"github.com/fe-php/fe-php/internal/config"
)

// Kind is how a rule's pattern compares with a path.
type Kind uint8

// Pattern kinds.
const (
	Prefix Kind = iota // the path starts with Value
	Suffix             // the path ends with Value
	Exact              // the path equals Value
	Regex              // the path matches the regular expression Value
)

var kindNames = [...]string{Prefix: "prefix", Suffix: "suffix", Exact: "exact", Regex: "regex"}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("Kind(%d)", k)
}

// ParseKind returns the Kind named s ("prefix", "suffix", "exact", "regex").
func ParseKind(s string) (Kind, error) {
	for k, name := range kindNames {
		if name == s {
			return Kind(k), nil
		}
	}
	return 0, fmt.Errorf("unknown pattern type %q", s)
}

// Rule routes the paths its pattern matches to Backend.
type Rule struct {
	Kind     Kind
	Value    string
	Priority int
	Backend  string
	// Index is the rule's position in the configuration, for messages.
	Index int

	re *regexp.Regexp
}

func (r *Rule) String() string {
	return fmt.Sprintf("routing_rules[%d] %s %q priority %d", r.Index, r.Kind, r.Value, r.Priority)
}

func (r *Rule) match(p string) bool {
	switch r.Kind {
	case Prefix:
		return strings.HasPrefix(p, r.Value)
	case Suffix:
		return strings.HasSuffix(p, r.Value)
	case Exact:
		return p == r.Value
	default:
		return r.re.MatchString(p)
	}
}

// Router holds rules sorted for matching.
type Router struct {
	rules []Rule
}

// New sorts rules by descending priority (stable: equal priorities keep
// their order) and compiles regex patterns.
func New(rules []Rule) (*Router, error) {
	sorted := slices.Clone(rules)
	for i := range sorted {
		if sorted[i].Kind == Regex {
			re, err := regexp.Compile(sorted[i].Value)
			if err != nil {
				return nil, fmt.Errorf("routing_rules[%d]: regex does not compile: %w", sorted[i].Index, err)
			}
			sorted[i].re = re
		}
	}
	slices.SortStableFunc(sorted, func(a, b Rule) int { return b.Priority - a.Priority })
	return &Router{rules: sorted}, nil
}

// Rules returns the rules in matching order. Match's result indexes it.
func (rt *Router) Rules() []Rule { return rt.rules }

// Match returns the index in Rules of the first rule matching the cleaned
// path p, or -1 when none does (the default backend's turn).
func (rt *Router) Match(p string) int {
	for i := range rt.rules {
		if rt.rules[i].match(p) {
			return i
		}
	}
	return -1
}

// Route is how the server routes a request path, in one place for the
// server and the routes command: p must be an absolute path without a
// NUL byte (ok is false otherwise: the server answers 400); it is cleaned
// (see CleanPath) and matched. rule is Match's result: -1 for the default
// backend.
func (rt *Router) Route(p string) (cleaned string, rule int, ok bool) {
	if p == "" || p[0] != '/' || strings.IndexByte(p, 0) >= 0 {
		return "", -1, false
	}
	cleaned = CleanPath(p)
	return cleaned, rt.Match(cleaned), true
}

// CleanPath returns the canonical form of an absolute, decoded URL path:
// "." and ".." resolved, repeated slashes collapsed, never above "/", and a
// trailing slash kept (it distinguishes "/status/" from "/status"). A path
// that is already clean is returned as is, without allocating.
func CleanPath(p string) string {
	if isClean(p) {
		return p
	}
	if p == "" || p[0] != '/' {
		p = "/" + p
	}
	c := path.Clean(p)
	if strings.HasSuffix(p, "/") && c != "/" {
		c += "/"
	}
	return c
}

// isClean reports whether p starts with "/" and has no empty, "." or ".."
// segment (a final empty segment, the trailing slash, is fine).
func isClean(p string) bool {
	if p == "" || p[0] != '/' {
		return false
	}
	start := 1
	for i := 1; i <= len(p); i++ {
		if i < len(p) && p[i] != '/' {
			continue
		}
		seg := p[start:i]
		if (seg == "" && i < len(p)) || seg == "." || seg == ".." {
			return false
		}
		start = i + 1
	}
	return true
}

// FromConfig builds the router of a validated configuration. With
// enable_hybrid = false it has no rules: every path goes to the default.
func FromConfig(b *config.Backend) (*Router, error) {
	if !b.EnableHybrid {
		return New(nil)
	}
	rules := make([]Rule, len(b.RoutingRules))
	for i, r := range b.RoutingRules {
		k, err := ParseKind(r.Pattern.Type)
		if err != nil {
			return nil, fmt.Errorf("routing_rules[%d]: %w", i, err)
		}
		rules[i] = Rule{Kind: k, Value: r.Pattern.Value, Priority: r.Priority, Backend: r.Backend, Index: i}
	}
	return New(rules)
}
