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
	case "disable_functions", "disable_classes":
		// PHP applies them when it starts: per request, embedded PHP would
		// show the value and still run the functions, and FPM would
		// disable them in the child for every later request, of any path.
		return fmt.Errorf("%s takes effect only when PHP starts: set it in [php.ini] (embedded) or the FPM pool", name)
	}
	d, ok := directives[name]
	if !ok {
		return fmt.Errorf("%q is %w", name, ErrUnknown)
	}
	switch {
	case !admin && d.Access&PerDir == 0 && d.Access&User != 0:
		// PHP_INI_USER only: a script's ini_set(), not php_value (FPM
		// would apply it anyway, embedded PHP refuse it).
		return fmt.Errorf("%s can only be set by a script (ini_set), or by an administrator: move it to php_admin_ini", name)
	case !admin && d.Access&PerDir == 0:
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
	// number is an integer or a size (128M): the same to PHP quoted or not.
	number = regexp.MustCompile(`^-?[0-9]+[KMGkmg]?$`)
	// errorLevels is an expression of E_* constants and numbers, as in
	// php.ini's error_reporting = E_ALL & ~E_NOTICE: PHP must evaluate it,
	// so it cannot be quoted. Anything else is quoted: an unquoted value
	// is a keyword (None, Off: ""), a constant (PHP_VERSION) or an operator
	// (!, &) to PHP's INI parser.
	errorLevels = regexp.MustCompile(`^[(~ ]*(E_[A-Z_]+|[0-9]+)([ )]*[&|^][ (~]*(E_[A-Z_]+|[0-9]+))*[ )]*$`)
)

// Value writes v for PHP's INI parser so that PHP gets exactly v: a
// number or size as it is, an expression of E_* constants as it is (PHP
// evaluates it, as in php.ini), anything else double-quoted with \, "
// and $ escaped (so ${VAR} is literal). Unquoted, a URL such as
// tcp://host:6379?timeout=2.5&prefix=s: would end at its "=", and a parse
// error drops every later line with it; "None" would be "". Quoted On and
// Off still mean true and false to PHP's boolean settings.
func Value(v string) string {
	if number.MatchString(v) || errorLevels.MatchString(v) {
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
