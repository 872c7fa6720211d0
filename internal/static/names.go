package static

import (
	"path"
	"strings"

	"github.com/fe-php/fe-php/internal/docroot"
	"github.com/fe-php/fe-php/internal/phpreq"
)

// forbidden says why upath must never be served, or "" if it may be. It
// judges a request path, and also the path a symlink led to (see
// resolvedForbidden).
func forbidden(upath string) string {
	if strings.ContainsAny(upath, "\x00\\") {
		return "NUL byte or backslash in path"
	}
	for seg := range strings.SplitSeq(upath, "/") {
		if len(seg) > 0 && seg[0] == '.' && seg != ".well-known" {
			return "dotfile or dot-directory"
		}
	}
	if phpreq.IsPHPSource(upath) {
		return "PHP source is never served as a static file"
	}
	if isPHPBackup(upath[strings.LastIndexByte(upath, '/')+1:]) {
		return "backup or editor copy of a PHP source"
	}
	return ""
}

// isPHPBackup reports whether name, the last segment of a path, is a copy
// of a PHP source that an editor, a deploy or a person left next to it,
// which holds the source just as well: a dot, then a PHP source
// extension without its dot (any case; the extensions of
// phpreq.IsPHPSource: php, phtml, phar, inc...) as a whole run of ASCII
// letters and digits, then at least one more byte. That covers
// "config.php~", "config.php.bak" (.old, .orig, .save, .swp, .dist,
// .tmp, .1, .2024-01-31...), "config.php-", "config.php." and Emacs's
// "#config.php#"; vim's ".config.php.swp" is a dotfile already. The run
// must be whole, so "my.phpstorm.xml" (".phpstorm") and "a.php5x" are
// not backups, nor are "php.png" or "phpinfo.html" (no dot before
// "php"). Names such as "index.php.html", which wget -E gives a saved
// page, or "footer.inc.html" are refused too: the rule has no exceptions
// to get wrong, and the debug log says why.
func isPHPBackup(name string) bool {
	for i := 0; i < len(name); i++ {
		if name[i] != '.' {
			continue
		}
		j := i + 1
		for j < len(name) && isAlnum(name[j]) {
			j++
		}
		if j > i+1 && j < len(name) && phpreq.IsPHPSource(name[i:j]) {
			return true
		}
		i = j - 1
	}
	return false
}

func isAlnum(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}

// resolvedForbidden says why a file opened through a symlink must not be
// served, or "" if it may be. A symlink is followed only to a file the
// server would send under its own name: the checks of forbidden apply to
// the path the kernel resolved fd to (read from /proc/self/fd), below
// the deepest directory it shares with the root's resolved path. Inside
// the root that is the file's path relative to the root; outside it
// (Options.AllowSymlinksOutsideRoot) it is the part of the path the
// root does not share, so that "../outside/secret.php" or
// "/srv/other/.git/config" are refused while Debian WordPress's
// "wp-content -> /var/lib/wordpress/wp-content" works. Checking where
// the chain of links ends, rather than each link on the way, judges the
// file whose bytes would be sent, and covers links met inside a link's
// target too.
//
// It also returns the resolved path, which the small-file cache keeps.
// Without /proc (the root's resolved path is unknown) nothing can be
// checked, and only the request path is.
func resolvedForbidden(d *docroot.Dir, fd int) (real, why string) {
	if d.Real == "" {
		return "", ""
	}
	real = docroot.RealPath(fd)
	if real == "" {
		return "", "resolved path unknown"
	}
	return real, forbidden(unshared(real, d.Real))
}

// unshared returns the part of the resolved path p below the deepest
// directory it shares with the resolved directory dir ("" if p is dir).
func unshared(p, dir string) string {
	for !within(p, dir) {
		dir = path.Dir(dir)
	}
	return p[len(dir):]
}

// refusedError is why a file that exists is never served: a 404.
type refusedError string

func (e refusedError) Error() string { return string(e) }
