// Package phpini knows PHP's ini directives: which exist in the PHP fe-php
// is built with, at which level each may be set, and its production value.
// fe-php uses it to check a routing rule's php_ini and php_admin_ini before
// it starts, and to write them as PHP-FPM's PHP_VALUE and PHP_ADMIN_VALUE.
//
// directives.json is generated from the ZTS build (scripts/build-php.sh)
// with `go generate`: ini_get_all() under its php.ini (Debian's production
// one) and conf.d, plus OPcache.
package phpini

//go:generate sh -c "/usr/local/php-zts-embed/bin/php -d zend_extension=opcache gen.php > directives.json"

import (
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
)

// Levels at which a directive may be set (PHP's PHP_INI_* modes).
const (
	// User: ini_set() in a script.
	User = 1
	// PerDir: .user.ini, Apache's php_value, FPM's PHP_VALUE.
	PerDir = 2
	// System: php.ini, Apache's php_admin_value, FPM's PHP_ADMIN_VALUE.
	System = 4
)

// Directive is one of PHP's ini settings.
type Directive struct {
	Name string
	// Access is the levels it may be set at (User|PerDir|System bits).
	Access int
	// Production is its value under the build's php.ini (Debian's
	// php.ini-production) and conf.d.
	Production string
}

//go:embed directives.json
var directivesJSON []byte

var directives = func() map[string]Directive {
	var raw map[string][2]any
	if err := json.Unmarshal(directivesJSON, &raw); err != nil {
		panic("phpini: directives.json: " + err.Error())
	}
	m := make(map[string]Directive, len(raw))
	for name, d := range raw {
		access, _ := d[0].(float64)
		value, _ := d[1].(string)
		m[name] = Directive{Name: name, Access: int(access), Production: value}
	}
	return m
}()

// Lookup returns the directive called name.
func Lookup(name string) (Directive, bool) {
	d, ok := directives[name]
	return d, ok
}

// ErrUnknown is Check's error for a name that is no directive of this PHP.
var ErrUnknown = errors.New("not a setting of this PHP (8.2 with Debian's extensions and OPcache)")

// Check reports why name=value cannot be set per request: at the PerDir
// level (php_ini, PHP_VALUE) or, with admin, at the System level
// (php_admin_ini, PHP_ADMIN_VALUE). It returns nil when it can.
func Check(name, value string, admin bool) error {
	if strings.ContainsAny(value, "\x00\r\n") {
		return fmt.Errorf("the value of %s holds a NUL, CR or LF", name)
	}
	switch name {
	case "extension", "zend_extension":
		return fmt.Errorf("%s cannot be loaded per request: load it in php.ini or [php.ini]", name)
	}
	d, ok := directives[name]
	if !ok {
		return fmt.Errorf("%q is %w", name, ErrUnknown)
	}
	if !admin && d.Access&(User|PerDir) == 0 {
		return fmt.Errorf("%s can only be set in php.ini or by an administrator: move it to php_admin_ini", name)
	}
	return nil
}

// Names returns every directive's name, sorted.
func Names() []string { return slices.Sorted(maps.Keys(directives)) }

// Text writes settings as PHP's INI text, one "name=value" line each in
// name order: the form of FPM's PHP_VALUE, which the embedded backend
// parses the same way. Each value is written with Value.
func Text(settings map[string]string) string {
	var sb strings.Builder
	for _, k := range slices.Sorted(maps.Keys(settings)) {
		sb.WriteString(k)
		sb.WriteByte('=')
		sb.WriteString(Value(settings[k]))
		sb.WriteByte('\n')
	}
	return sb.String()
}

var (
	// plain values mean the same to PHP's INI parser quoted or not.
	plain = regexp.MustCompile(`^[A-Za-z0-9_.,/:+\-@%*?#]+( +[A-Za-z0-9_.,/:+\-@%*?#]+)*$`)
	// expressions of constants and numbers are PHP's to evaluate, as in
	// php.ini: error_reporting = E_ALL & ~E_NOTICE.
	expression = regexp.MustCompile(`^[A-Z0-9_ &|^~!()]+$`)
)

// Value writes v for PHP's INI parser so that PHP gets exactly v: as it
// is when PHP would read it so anyway (a size, a flag such as On, a
// constant expression), else double-quoted with \, " and $ escaped. A
// URL such as tcp://host:6379?timeout=2.5&prefix=s: would otherwise end
// at its "=" (and drop every later line with it).
func Value(v string) string {
	if plain.MatchString(v) || expression.MatchString(v) {
		return v
	}
	var sb strings.Builder
	sb.WriteByte('"')
	for _, c := range []byte(v) {
		if c == '\\' || c == '"' || c == '$' {
			sb.WriteByte('\\')
		}
		sb.WriteByte(c)
	}
	sb.WriteByte('"')
	return sb.String()
}
