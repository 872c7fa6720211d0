// Package phpreq is how fe-php's two PHP backends (fastcgi to PHP-FPM and
// embedded libphp) see a request, so that both see it the same way: which
// script a path runs (Resolver.Resolve), the CGI/1.1 environment the
// script gets (Resolver.Env), and a request body with a known length
// (PrepareBody; FPM needs CONTENT_LENGTH).
//
// The server hands backends an *http.Request whose URL.Path is already
// percent-decoded and cleaned (no "." or ".." segment, no "//"; a
// trailing slash kept; no NUL byte) and whose RequestURI is the original
// request target. Resolve relies on that.
package phpreq

import (
	"errors"
	"fmt"
	"net/http"
	"path"
	"path/filepath"
	"strings"
	"sync/atomic"

	"golang.org/x/sys/unix"

	"github.com/fe-php/fe-php/internal/docroot"
)

// Options configures a Resolver.
type Options struct {
	// DocumentRoot is the directory PHP scripts live in. A relative path
	// is made absolute; it must exist and be a directory.
	DocumentRoot string
	// FrontController is the script that runs for a path naming no file,
	// as nginx's `try_files $uri $uri/ /index.php?$args`: e.g.
	// "/index.php" (a missing leading slash is added). "" disables the
	// fallback: such paths are NotFound.
	FrontController string
	// ServerSoftware is SERVER_SOFTWARE, e.g. "fe-php/0.1.0". WordPress
	// reads it to decide whether pretty permalinks work.
	ServerSoftware string
	// ServerName is SERVER_NAME ("": the host the client asked for).
	ServerName string
	// IndexFiles are tried in order for a directory (nginx's index); nil
	// means {"index.php"}. A ".php" one runs, another is sent as a file
	// (never a PHP source under another extension).
	IndexFiles []string
	// Root, if set, is DocumentRoot opened already and shared with the
	// static handlers on it, so that all switch releases together. Nil:
	// NewResolver opens it (Close closes it).
	Root *docroot.Root
}

// Resolver maps request paths to scripts under a document root and builds
// their CGI environment. It is safe for concurrent use.
type Resolver struct {
	opts Options
	// front is the front controller's URL path, "" if there is none.
	front string
	// dir follows the root through its symlinks; view is what requests
	// need of its current Dir, made again when the Dir changes.
	dir   *docroot.Root
	owned bool
	view  atomic.Pointer[rootView]
	// local caches the strings of the server's local addresses
	// (SERVER_ADDR, SERVER_PORT): copy on write, a handful of entries.
	local atomic.Pointer[[]localAddr]
}

// rootView is the document root with its symlinks resolved (nginx's
// $realpath_root): DOCUMENT_ROOT and every SCRIPT_FILENAME name the
// release directory a "current -> releases/N" link points to when the
// request arrives, so that OPcache (which caches by path, even without
// validate_timestamps) runs the new release after a switch.
type rootView struct {
	// dir is what the view was made of: dir.Path is DOCUMENT_ROOT.
	dir *docroot.Dir
	// prefix is what a URL path is appended to for a file name: dir.Path,
	// or "" when that is "/".
	prefix string
	// frontFile is the front controller's file name, "" if none.
	frontFile string
}

func (rs *Resolver) newView(d *docroot.Dir) *rootView {
	v := &rootView{dir: d, prefix: strings.TrimSuffix(d.Path, "/")}
	if rs.front != "" {
		v.frontFile = v.prefix + rs.front
	}
	return v
}

// current is the root for a request, as the shared Root sees it now.
func (rs *Resolver) current() *rootView {
	d := rs.dir.Dir()
	if v := rs.view.Load(); v != nil && v.dir == d {
		return v
	}
	v := rs.newView(d)
	rs.view.Store(v)
	return v
}

// NewResolver checks opts and returns a Resolver. It fails when the
// document root is missing or not a directory, or the front controller
// path is unusable (a dot segment, a trailing slash). A front controller
// that does not exist (yet) is no error: it is looked up per request.
func NewResolver(opts Options) (*Resolver, error) {
	if opts.DocumentRoot == "" {
		return nil, errors.New("phpreq: no document root")
	}
	root, err := filepath.Abs(opts.DocumentRoot)
	if err != nil {
		return nil, fmt.Errorf("phpreq: document root %q: %w", opts.DocumentRoot, err)
	}
	var st unix.Stat_t
	if err := unix.Stat(root, &st); err != nil {
		return nil, fmt.Errorf("phpreq: document root %q: %w", root, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return nil, fmt.Errorf("phpreq: document root %q: not a directory", root)
	}
	rs := &Resolver{opts: opts}
	rs.opts.DocumentRoot = root
	if opts.IndexFiles == nil {
		rs.opts.IndexFiles = []string{"index.php"}
	}
	for _, name := range rs.opts.IndexFiles {
		if name == "" || strings.ContainsAny(name, "/\\\x00") || name[0] == '.' {
			return nil, fmt.Errorf("phpreq: index file %q: must be a plain file name", name)
		}
	}
	if fc := opts.FrontController; fc != "" {
		fc = path.Clean("/" + fc)
		if fc == "/" || strings.HasSuffix(opts.FrontController, "/") || hiddenSegment(fc) ||
			strings.ContainsAny(fc, "\x00\\") {
			return nil, fmt.Errorf("phpreq: front controller %q: must name a file under the document root, without a dot segment", opts.FrontController)
		}
		rs.front = fc
		rs.opts.FrontController = fc
	}
	rs.dir = opts.Root
	if rs.dir == nil {
		if rs.dir, err = docroot.Open(root, nil); err != nil {
			return nil, fmt.Errorf("phpreq: document root %q: %w", root, err)
		}
		rs.owned = true
	} else if rs.dir.Path() != root {
		return nil, fmt.Errorf("phpreq: document root %q opened as %q", root, rs.dir.Path())
	}
	rs.current()
	return rs, nil
}

// Close releases the document root, if NewResolver opened it.
func (rs *Resolver) Close() error {
	if !rs.owned {
		return nil
	}
	return rs.dir.Close()
}

// DocumentRoot returns the document root requests see now: the
// configured one with its symlinks resolved.
func (rs *Resolver) DocumentRoot() string { return rs.current().dir.Path }

// FrontController returns the front controller's URL path ("/index.php"),
// "" if there is none.
func (rs *Resolver) FrontController() string { return rs.front }

// Kind is what a request path resolves to.
type Kind int

const (
	// Script: run Target.ScriptFilename.
	Script Kind = iota
	// Static: a regular file that is not PHP. The backend sends it with
	// the static backend's protections (Target.ScriptName and
	// ScriptFilename name the file).
	Static
	// Redirect: a directory without its trailing slash. The backend
	// answers 301 to Target.Location.
	Redirect
	// NotFound: no file and no (existing) front controller. Send 404.
	NotFound
	// Forbidden: a path that must never be executed nor served, whether
	// or not the file exists: a dot segment (".env", ".git/config",
	// "/.hidden.php"; ".well-known" excepted, ACME needs it), or PHP
	// source that is not a ".php" script (".phtml", ".inc", "X.PHP", ...;
	// the same list the static backend never serves).
	//
	// Backends send 404, not 403, for Forbidden: a 403 would confirm that
	// "/.env" or "/.git/config" exists to a scanner, and the static
	// backend answers 404 for the same paths, so a path gets the same
	// status whichever backend a routing rule picks. The distinct Kind is
	// for the debug log ("why was this 404?").
	Forbidden
)

var kindNames = [...]string{Script: "script", Static: "static", Redirect: "redirect", NotFound: "not found", Forbidden: "forbidden"}

func (k Kind) String() string {
	if k >= 0 && int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Target is what a request path resolves to.
type Target struct {
	Kind Kind
	// ScriptName is the URL path of the script ("/a.php"), or for Static
	// the URL path of the file.
	ScriptName string
	// ScriptFilename is DocumentRoot + ScriptName.
	ScriptFilename string
	// PathInfo is what follows the script in the path: "/b/c" for
	// "/a.php/b/c", "" otherwise. Always "" for the front controller.
	PathInfo string
	// Location is where a Redirect points: the escaped path with the
	// trailing slash added, then "?" and the raw query if there is one.
	Location string
	// Root is the DOCUMENT_ROOT ScriptFilename is under (the release a
	// symlinked root pointed to when the request was resolved).
	Root string
}

// Resolve maps r.URL.Path to a target, in this order:
//
//   - A path with a NUL byte or not starting with "/" is NotFound (the
//     server never passes one). A path with a segment starting with "."
//     other than ".well-known" is Forbidden (see Forbidden).
//   - A path with a segment ending in ".php" (case-sensitive) is split at
//     the first such segment that names an existing regular file:
//     "/a.php/b/c" is ScriptName "/a.php", PathInfo "/b/c". A ".php"
//     segment that is not an existing file is no split point, so
//     "/uploads/x.jpg/y.php" never runs x.jpg (CVE-2019-11043).
//   - A path naming an existing regular file that is not PHP is Static;
//     one with another PHP extension (".phtml", ".PHP", ".inc", ...) is
//     Forbidden: neither run nor served as source.
//   - A directory without the trailing slash is a Redirect adding it
//     (query kept); with it, the first of IndexFiles that exists (a
//     Script for ".php", else Static), else the front controller.
//   - Anything else (nothing there, a path with a backslash, a special
//     file, a stat error) is the front controller, ScriptName =
//     FrontController and PathInfo "", if one is configured and exists;
//     else NotFound.
//
// Symlinks are followed, as nginx and PHP-FPM do (Debian's WordPress
// links wp-content out of the document root). Resolve costs one stat for
// a script or a file, two for a directory index or the front controller.
func (rs *Resolver) Resolve(r *http.Request) Target {
	p := r.URL.Path
	if p == "" || p[0] != '/' || strings.IndexByte(p, 0) >= 0 {
		return Target{Kind: NotFound}
	}
	if hiddenSegment(p) {
		return Target{Kind: Forbidden}
	}
	if strings.IndexByte(p, '\\') >= 0 {
		// A backslash is an ordinary byte on Linux, but the static backend
		// refuses such paths; no file lookup, let the application route it.
		return rs.frontController(rs.current())
	}
	v := rs.current()
	full := v.prefix + p
	n := len(v.prefix)

	// Split points: segments ending in ".php". The last segment, if it
	// ends in ".php", is the full path and is looked at below.
	start := 1
	for i := 1; i < len(p); i++ {
		if p[i] != '/' {
			continue
		}
		if i-start > len(".php") && p[i-4:i] == ".php" {
			if m, ok := statMode(full[:n+i]); ok && m == unix.S_IFREG {
				return Target{Kind: Script, ScriptName: p[:i], ScriptFilename: full[:n+i], PathInfo: p[i:], Root: v.dir.Path}
			}
		}
		start = i + 1
	}

	m, ok := statMode(full)
	switch {
	case !ok:
	case m == unix.S_IFREG:
		if strings.HasSuffix(p, ".php") {
			return Target{Kind: Script, ScriptName: p, ScriptFilename: full, Root: v.dir.Path}
		}
		if IsPHPSource(p) {
			return Target{Kind: Forbidden}
		}
		return Target{Kind: Static, ScriptName: p, ScriptFilename: full}
	case m == unix.S_IFDIR:
		if p[len(p)-1] != '/' {
			return Target{Kind: Redirect, Location: dirLocation(r)}
		}
		for _, name := range rs.opts.IndexFiles {
			idx := full + name
			if m, ok := statMode(idx); !ok || m != unix.S_IFREG {
				continue
			}
			switch {
			case strings.HasSuffix(name, ".php"):
				return Target{Kind: Script, ScriptName: idx[n:], ScriptFilename: idx, Root: v.dir.Path}
			case !IsPHPSource(name):
				return Target{Kind: Static, ScriptName: idx[n:], ScriptFilename: idx}
			}
		}
	}
	return rs.frontController(v)
}

// frontController is the fallback target: the front controller if it is
// configured and exists, else NotFound.
func (rs *Resolver) frontController(v *rootView) Target {
	if v.frontFile != "" {
		if m, ok := statMode(v.frontFile); ok && m == unix.S_IFREG {
			return Target{Kind: Script, ScriptName: rs.front, ScriptFilename: v.frontFile, Root: v.dir.Path}
		}
	}
	return Target{Kind: NotFound}
}

// statMode returns the file type bits (S_IFMT) of name, symlinks
// followed; ok is false if it cannot be stat'ed.
func statMode(name string) (mode uint32, ok bool) {
	var st unix.Stat_t
	for {
		err := unix.Stat(name, &st)
		if err == nil {
			return st.Mode & unix.S_IFMT, true
		}
		if err != unix.EINTR {
			return 0, false
		}
	}
}

// hiddenSegment reports whether p has a segment starting with "." other
// than ".well-known".
func hiddenSegment(p string) bool {
	for i := 0; i < len(p); i++ {
		if p[i] == '.' && (i == 0 || p[i-1] == '/') {
			end := strings.IndexByte(p[i:], '/')
			if end < 0 {
				end = len(p) - i
			}
			if p[i:i+end] != ".well-known" {
				return true
			}
		}
	}
	return false
}

// phpExtensions are the suffixes PHP handlers commonly execute; their
// source is never served, by either backend.
var phpExtensions = []string{".php", ".phtml", ".phar", ".phps", ".pht", ".php3", ".php4", ".php5", ".php7", ".php8", ".inc"}

// IsPHPSource reports whether path p names a PHP source file by its
// extension (any case): such a file is never sent as a static file.
func IsPHPSource(p string) bool {
	ext := path.Ext(p)
	if ext == "" {
		return false
	}
	for _, e := range phpExtensions {
		if strings.EqualFold(ext, e) {
			return true
		}
	}
	return false
}

// dirLocation is r's path with a trailing slash added, escaped, and the
// query kept. The path is clean, so it has no "//" that could make the
// Location another host.
func dirLocation(r *http.Request) string {
	loc := "/" + strings.TrimLeft(r.URL.EscapedPath(), "/") + "/"
	if r.URL.RawQuery != "" {
		loc += "?" + r.URL.RawQuery
	}
	return loc
}
